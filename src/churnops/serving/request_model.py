"""The prediction request: its model, derived from the schema module, and its validation.

One pydantic type gives three things that must agree: the checks on every request,
the error messages (which name the field and say what was expected), and the JSON
schema in the OpenAPI document. Validating value by value in pydantic was the largest
cost of a batch request (docs/serving.md), so a body is first decoded by msgspec into
structs built from the same schema, with the same checks, which takes a third of the
time. msgspec decides; when it rejects a body, pydantic validates it again to name
every problem (and, should the two ever disagree, pydantic's verdict stands).
tests/code/test_request_model.py checks on generated bodies that they agree.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Annotated, Any, Literal

import msgspec
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from churnops import schema

MAX_ERRORS_LISTED = 20
# Bytes allowed per customer in a body: a customer is about 600 bytes of compact JSON,
# so this leaves room for pretty-printed bodies and bounds what a client can make us parse.
BODY_BYTES_PER_CUSTOMER = 2048


@dataclass
class RequestRejected(Exception):
    """A bad request: the HTTP status, a metrics reason and a message naming the field."""

    status: int
    reason: str
    message: str
    errors: list[dict[str, str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"error": self.reason, "message": self.message}
        if self.errors:
            payload["errors"] = self.errors
        return payload


def _field_type(feature: schema.Feature) -> Any:
    """The pydantic type of one feature: its allowed values, or its type and range."""
    if feature.is_categorical:
        kind: Any = Literal[feature.values]
    elif feature.kind == "binary":
        kind = Annotated[int, Field(strict=True, ge=feature.minimum, le=feature.maximum)]
    else:
        kind = Annotated[float, Field(ge=feature.minimum, le=feature.maximum, allow_inf_nan=False)]
    return kind | None if feature.nullable else kind


def _struct_field_type(feature: schema.Feature) -> Any:
    """`_field_type` for msgspec, which is strict already (no bool for int, no 1.0 for 1)."""
    if feature.is_categorical:
        kind: Any = Literal[feature.values]
    elif feature.kind == "binary":
        bounds = msgspec.Meta(ge=int(feature.minimum), le=int(feature.maximum))
        kind = Annotated[int, bounds]
    else:
        kind = Annotated[float, msgspec.Meta(ge=feature.minimum, le=feature.maximum)]
    return kind | None if feature.nullable else kind


def customer_struct() -> type[msgspec.Struct]:
    """One customer as msgspec checks it, with the same rules as `customer_model`."""
    return msgspec.defstruct(
        "Customer",
        [(f.name, _struct_field_type(f)) for f in schema.FEATURES],
        forbid_unknown_fields=True,
        gc=False,  # holds only numbers and strings
    )


def request_decoder(max_batch: int) -> msgspec.json.Decoder:
    """Decodes and validates a POST /predict body into structs, as `request_model` does."""
    customers = Annotated[
        list[customer_struct()],
        msgspec.Meta(min_length=1, max_length=max_batch),
    ]
    body = msgspec.defstruct(
        "PredictRequest", [("customers", customers)], forbid_unknown_fields=True
    )
    return msgspec.json.Decoder(body)


def _typed_dict(name: str, fields: dict[str, Any]) -> type:
    typed = TypedDict(name, fields)
    typed.__pydantic_config__ = ConfigDict(extra="forbid", strict=True)
    return typed


def customer_model() -> type:
    """One customer: exactly the schema's features, all required (nullable ones may be null)."""
    return _typed_dict(
        "Customer",
        {
            f.name: Annotated[_field_type(f), Field(description=f.description)]
            for f in schema.FEATURES
        },
    )


def request_model(max_batch: int) -> TypeAdapter:
    """The body of POST /predict: one to `max_batch` customers."""
    customers = Annotated[list[customer_model()], Field(min_length=1, max_length=max_batch)]
    return TypeAdapter(_typed_dict("PredictRequest", {"customers": customers}))


def request_json_schema(model: TypeAdapter) -> dict[str, Any]:
    """The request's JSON schema with the customer inlined (OpenAPI 3.0 has no `$defs`)."""
    body = model.json_schema()
    definitions = body.pop("$defs")
    body["properties"]["customers"]["items"] = definitions["Customer"]
    return body


def example_customer() -> dict[str, Any]:
    """A valid customer built from the schema (first allowed value, lowest number)."""
    customer: dict[str, Any] = {}
    for f in schema.FEATURES:
        if f.is_categorical:
            customer[f.name] = f.values[0]
        else:
            customer[f.name] = int(f.minimum) if f.kind == "binary" else float(f.minimum)
    return customer


_ITEMS = operator.itemgetter(*schema.FEATURE_NAMES)
_ATTRIBUTES = operator.attrgetter(*schema.FEATURE_NAMES)


def _transpose(rows: Iterable[tuple[Any, ...]]) -> dict[str, list[Any]]:
    return dict(zip(schema.FEATURE_NAMES, map(list, zip(*rows, strict=True)), strict=False))


def columns_of(customers: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Validated customers as the predictor's per-feature value lists, in order."""
    return _transpose(map(_ITEMS, customers))


def field_path(loc: Sequence[int | str]) -> str:
    """`("customers", 0, "tenure")` -> `customers[0].tenure`; the body itself is `body`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "body"


def _rejection(error: ValidationError, prefix: tuple[int | str, ...] = ()) -> RequestRejected:
    return _rejected(_details(error, prefix), complete=True)


def _details(error: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[dict[str, Any]]:
    details = error.errors(include_url=False, include_input=False)
    return [{**d, "loc": (*prefix, *d["loc"])} for d in details]


def _rejected(details: list[dict[str, Any]], complete: bool) -> RequestRejected:
    """The rejection for pydantic's error details: the first MAX_ERRORS_LISTED are listed."""
    first = details[0]
    if first["type"] == "json_invalid":
        return RequestRejected(400, "invalid_json", f"body is not valid JSON: {first['msg']}")
    if first["type"] == "too_long" and tuple(first["loc"]) == ("customers",):
        limit = first["ctx"]["max_length"]
        return RequestRejected(
            413, "too_large", f"customers: at most {limit} customers per request"
        )
    errors = [
        {"field": field_path(d["loc"]), "message": d["msg"], "type": d["type"]}
        for d in details[:MAX_ERRORS_LISTED]
    ]
    if not complete:
        more = " (and more)"
    else:
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    message = f"{errors[0]['field']}: {errors[0]['message']}{more}"
    return RequestRejected(422, "validation", message, errors)


class RequestParser:
    """Validates POST /predict bodies and turns them into the predictor's columns."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self.max_body_bytes = max_batch * BODY_BYTES_PER_CUSTOMER
        self.model = request_model(max_batch)  # the body's type, for the OpenAPI document
        self.frame = _frame_model(max_batch)
        self.customer = TypeAdapter(customer_model())
        self.decoder = request_decoder(max_batch)

    def check_content_type(self, content_type: str | None) -> None:
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise RequestRejected(
                415,
                "unsupported_media_type",
                f"content-type must be application/json, got {content_type or 'none'!r}",
            )

    def check_length(self, length: int) -> None:
        if length > self.max_body_bytes:
            raise RequestRejected(
                413, "too_large", f"body: at most {self.max_body_bytes} bytes, got {length}"
            )

    def columns(self, body: bytes) -> dict[str, list[Any]]:
        """Per-feature value lists, in request order, of a valid body; RequestRejected if not."""
        if not body.strip():
            raise RequestRejected(400, "empty_body", 'body is empty: send {"customers": [...]}')
        self.check_length(len(body))
        quick = self.quick_columns(body)
        return quick if quick is not None else self.explained_columns(body)

    def quick_columns(self, body: bytes) -> dict[str, list[Any]] | None:
        """The columns of a valid body, decoded by msgspec; None if msgspec rejects it."""
        try:
            customers = self.decoder.decode(body).customers
        except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 inside a string
            return None
        return _transpose(map(_ATTRIBUTES, customers))

    def explained_columns(self, body: bytes) -> dict[str, list[Any]]:
        """The columns of a valid body, or RequestRejected naming what is wrong (pydantic).

        The work is bounded by what is reported: unknown keys beyond the listed errors are
        never handed to pydantic, and customers are validated one at a time until
        MAX_ERRORS_LISTED problems are found.
        """
        try:
            document = ANY_JSON.validate_json(body)
            customers = self.frame.validate_python(_trimmed(document, {"customers"}))["customers"]
        except ValidationError as error:
            raise _rejection(error) from None
        details: list[dict[str, Any]] = []
        valid = []
        for index, customer in enumerate(customers):
            try:
                valid.append(self.customer.validate_python(_trimmed(customer, FEATURE_SET)))
            except ValidationError as error:
                details += _details(error, ("customers", index))
            if len(details) >= MAX_ERRORS_LISTED:
                raise _rejected(details, complete=index == len(customers) - 1)
        if details:
            raise _rejected(details, complete=True)
        return columns_of(valid)


FEATURE_SET = frozenset(schema.FEATURE_NAMES)
ANY_JSON = TypeAdapter(Any)


def _trimmed(value: Any, known: frozenset[str] | set[str]) -> Any:
    """A JSON object with its known keys and at most MAX_ERRORS_LISTED unknown ones."""
    if not isinstance(value, dict):
        return value
    unknown = (key for key in value if key not in known)
    keep = known.intersection(value) | set(islice(unknown, MAX_ERRORS_LISTED))
    return value if len(keep) == len(value) else {k: v for k, v in value.items() if k in keep}


def _frame_model(max_batch: int) -> TypeAdapter:
    """The body's outer shape only: one to `max_batch` customers, each checked apart."""
    customers = Annotated[list[Any], Field(min_length=1, max_length=max_batch)]
    return TypeAdapter(_typed_dict("PredictFrame", {"customers": customers}))
