"""The request model is derived from the schema, and its rejections name the field."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from churnops import schema
from churnops.serving.request_model import (
    RequestParser,
    RequestRejected,
    customer_model,
    customer_struct,
    example_customer,
    field_path,
    request_json_schema,
)

parser = RequestParser(max_batch=5)


def _body(*customers: dict) -> bytes:
    return json.dumps({"customers": list(customers)}).encode()


def _rejection(body: bytes) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        parser.columns(body)
    return caught.value


def test_valid_customers_become_the_predictors_columns_in_order() -> None:
    first, second = example_customer(), {**example_customer(), "tenure": 7.0}
    columns = parser.columns(_body(first, second))
    assert list(columns) == list(schema.FEATURE_NAMES)
    assert columns["tenure"] == [first["tenure"], 7.0]
    assert columns["contract"] == [first["contract"]] * 2


def test_nullable_feature_takes_null_and_others_do_not() -> None:
    assert parser.columns(_body({**example_customer(), "total_charges": None}))[
        "total_charges"
    ] == [None]
    problem = _rejection(_body({**example_customer(), "tenure": None}))
    assert problem.errors[0]["field"] == "customers[0].tenure"


def test_json_schema_has_every_feature_with_its_allowed_values_and_range() -> None:
    body = request_json_schema(parser.model)
    customers = body["properties"]["customers"]
    assert customers["maxItems"] == 5 and customers["minItems"] == 1
    customer = customers["items"]
    assert customer["required"] == list(schema.FEATURE_NAMES)
    assert customer["additionalProperties"] is False
    for feature in schema.FEATURES:
        spec = customer["properties"][feature.name]
        if feature.is_categorical:
            assert spec["enum"] == list(feature.values)
        elif not feature.nullable:
            assert (spec["minimum"], spec["maximum"]) == (feature.minimum, feature.maximum)
    assert "$defs" not in json.dumps(body)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"contract": "Weekly"}, "customers[0].contract", "'Month-to-month', 'One year'"),
        ({"tenure": 121}, "customers[0].tenure", "less than or equal to 120"),
        ({"female": True}, "customers[0].female", "integer"),
        ({"monthly_charges": "12"}, "customers[0].monthly_charges", "number"),
        ({"extra": 1}, "customers[0].extra", "not permitted"),
    ],
)
def test_bad_value_is_a_422_naming_field_and_expectation(change, field, words) -> None:
    problem = _rejection(_body({**example_customer(), **change}))
    assert (problem.status, problem.reason) == (422, "validation")
    assert problem.errors[0]["field"] == field
    assert problem.message.startswith(field) and words in problem.message


def test_limits_and_framing_have_their_own_status_and_reason() -> None:
    assert (_rejection(b"  ").status, _rejection(b"  ").reason) == (400, "empty_body")
    assert _rejection(b"{nope").reason == "invalid_json"
    too_many = _rejection(_body(*[example_customer()] * 6))
    assert (too_many.status, too_many.reason) == (413, "too_large")
    assert "at most 5" in too_many.message
    with pytest.raises(RequestRejected) as caught:
        parser.check_length(parser.max_body_bytes + 1)
    assert caught.value.status == 413
    with pytest.raises(RequestRejected) as caught:
        parser.check_content_type("text/csv")
    assert caught.value.status == 415
    parser.check_content_type("application/json; charset=utf-8")


def test_many_errors_are_listed_up_to_a_limit() -> None:
    bad = {name: "?" for name in schema.FEATURE_NAMES}
    problem = _rejection(_body(bad, bad))
    assert len(problem.errors) == 20
    assert "more)" in problem.message


def test_field_path_reads_like_the_json() -> None:
    assert field_path(("customers", 3, "tenure")) == "customers[3].tenure"
    assert field_path(()) == "body"


def _valid_value(feature: schema.Feature) -> st.SearchStrategy:
    if feature.is_categorical:
        return st.sampled_from(feature.values)
    if feature.kind == "binary":
        return st.integers(int(feature.minimum), int(feature.maximum))
    low, high = feature.minimum, feature.maximum
    numbers = st.floats(low, high) | st.integers(int(low), int(high))
    return numbers | st.none() if feature.nullable else numbers


def _edges(feature: schema.Feature) -> list:
    """Values at and just beyond a feature's limits, as ints and floats, or near-miss categories."""
    if feature.is_categorical:
        return [v.lower() for v in feature.values] + [f"{feature.values[0]} "]
    low, high = feature.minimum, feature.maximum
    edges = [low, high, low - 1, high + 1, math.nextafter(low, -math.inf)]
    return [*edges, math.nextafter(high, math.inf), *map(int, edges)]


ODD = [None, True, False, 2**63, -0.0, 0.5, 1e308, "", "1", "Yes", "DSL", [], [0], {}]
ODD_VALUES = (
    st.sampled_from(ODD) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3)
)


NAMES = [*schema.FEATURE_NAMES, "extra"]


def _any_value(name: str) -> st.SearchStrategy:
    feature = schema.BY_NAME.get(name)
    return (
        ODD_VALUES
        if feature is None
        else ODD_VALUES | st.sampled_from(_edges(feature)) | _valid_value(feature)
    )


def _customers(size: int) -> st.SearchStrategy[list[list[tuple]]]:
    customer = st.fixed_dictionaries({f.name: _valid_value(f) for f in schema.FEATURES})
    return st.lists(customer.map(lambda c: list(c.items())), min_size=size, max_size=size)


@st.composite
def _body_json(draw: st.DrawFn) -> bytes:
    """A body, often valid; else with fields changed, dropped, repeated or added, or bad framing."""
    size = draw(st.sampled_from([0, parser.max_batch + 1]) | st.integers(1, parser.max_batch))
    customers = draw(_customers(size))
    for _ in range(draw(st.integers(0, 2)) if customers else 0):
        pairs = draw(st.sampled_from(customers))
        if not pairs:
            break
        index = draw(st.integers(0, len(pairs) - 1))
        change = draw(st.sampled_from(["value", "drop", "add"]))
        name = pairs[index][0] if change == "value" else draw(st.sampled_from(NAMES))
        value = draw(_any_value(name))
        if change == "drop":
            del pairs[index]
        elif change == "add":
            pairs.insert(index, (name, value))
        else:
            pairs[index] = (name, value)
    objects = [
        "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in p) + "}" for p in customers
    ]
    extra = draw(st.sampled_from(["", "", ',"extra":1', ',"customers":[]']))
    return ('{"customers":[' + ",".join(objects) + "]" + extra + "}").encode()


def _typed(columns: dict | None) -> dict | None:
    if columns is None:
        return None
    return {name: [(type(v), v) for v in values] for name, values in columns.items()}


def _repeats_a_key(body: bytes) -> bool:
    repeated = []
    json.loads(body, object_pairs_hook=lambda pairs: repeated.append(len(pairs) > len(dict(pairs))))
    return any(repeated)


def _assert_agree(body: bytes) -> None:
    """msgspec only accepts what pydantic accepts, and all of it but bodies repeating a key.

    (msgspec checks each occurrence of a repeated key, pydantic only the last: such a
    body goes to pydantic, which decides.)
    """
    try:
        explained = parser.explained_columns(body)
    except RequestRejected:
        explained = None
    quick = parser.quick_columns(body)
    if quick is not None or not _repeats_a_key(body):
        assert _typed(quick) == _typed(explained), body
    customers = json.loads(body)["customers"]
    if customers:  # `churnops score` checks records (no JSON, no batch limit) the same way
        quick_records = _passes(lambda c: msgspec.convert(c, STRUCTS), customers)
        assert quick_records == _passes(RECORDS.validate_python, customers), body


RECORDS = TypeAdapter(list[customer_model()])
STRUCTS = list[customer_struct()]


def _passes(check: Callable[[list], object], customers: list) -> bool:
    try:
        check(customers)
    except (msgspec.ValidationError, ValidationError):
        return False
    return True


@pytest.mark.parametrize("feature", schema.FEATURES, ids=lambda f: f.name)
def test_msgspec_and_pydantic_agree_on_each_field_at_its_limits(feature) -> None:
    customer = example_customer()
    for value in [*_edges(feature), *ODD]:
        _assert_agree(_body({**customer, feature.name: value}))
    _assert_agree(_body({k: v for k, v in customer.items() if k != feature.name}))
    _assert_agree(_body({**customer, f"{feature.name}_": customer[feature.name]}))


@settings(max_examples=600, deadline=None)
@given(_body_json())
def test_msgspec_and_pydantic_agree_on_generated_bodies(body: bytes) -> None:
    _assert_agree(body)


def _mutations() -> st.SearchStrategy[bytes]:
    """Raw bodies: a valid one with bytes replaced, inserted or cut, or any bytes at all."""
    valid = _body(example_customer(), example_customer())
    edit = st.tuples(st.integers(0, len(valid)), st.integers(0, 8), st.binary(max_size=8))
    spliced = st.lists(edit, min_size=1, max_size=4).map(lambda edits: _apply(valid, edits))
    encoded = st.sampled_from(["utf-16", "utf-32", "latin-1", "utf-8-sig"]).map(
        lambda codec: valid.decode().replace('"No"', '"Nö"', 1).encode(codec)
    )
    return st.one_of(spliced, encoded, st.binary(max_size=200))


def _apply(body: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for at, cut, insert in edits:
        body = body[:at] + insert + body[at + cut :]
    return body


@settings(max_examples=1500, deadline=None)
@given(_mutations())
def test_any_bytes_are_columns_or_a_4xx_never_an_exception(body: bytes) -> None:
    try:
        columns = parser.columns(body)
    except RequestRejected as rejected:
        assert 400 <= rejected.status < 500 and rejected.message
    else:
        assert set(columns) == set(schema.FEATURE_NAMES)


@pytest.mark.parametrize(
    "raw", [b'"N\xffo"', b'"\xed\xa0\x80"', b'"\xc3\x28"', b'"\xf8\x88\x80\x80\x80"']
)
def test_invalid_utf8_inside_a_string_is_a_400(raw: bytes) -> None:
    body = _body(example_customer()).replace(b'"No"', raw, 1)
    problem = _rejection(body)
    assert (problem.status, problem.reason) == (400, "invalid_json")


def test_rejecting_a_body_of_unknown_keys_hands_pydantic_only_what_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 2 MB body of unknown keys once cost 0.6 s of pydantic building 100k errors."""
    large = RequestParser(max_batch=1000)  # bodies up to 2 MB
    seen: list[int] = []
    validate = large.customer.validate_python
    monkeypatch.setattr(
        large.customer, "validate_python", lambda value: seen.append(len(value)) or validate(value)
    )
    flood = {f"k{i}": i for i in range(100_000)}
    customers = [example_customer() | flood, example_customer()]
    with pytest.raises(RequestRejected) as caught:
        large.columns(json.dumps({"customers": customers}).encode())
    assert len(caught.value.errors) == 20 and caught.value.message.endswith("(and more)")
    assert seen == [len(example_customer()) + 20]  # one customer: its keys and 20 unknown
    with pytest.raises(RequestRejected) as caught:
        large.columns(json.dumps({"customers": customers[1:], **flood}).encode())
    assert len(caught.value.errors) == 20
