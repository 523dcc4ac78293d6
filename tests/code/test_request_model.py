"""The request model is derived from the schema, and its rejections name the field."""

from __future__ import annotations

import json

import pytest

from churnops import schema
from churnops.request_model import (
    RequestParser,
    RequestRejected,
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
