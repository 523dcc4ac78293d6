"""The service's OpenAPI document (/docs.json): BentoML's, with churnops' endpoints in it.

BentoML documents its own endpoints (/livez, /readyz, /metrics, ...) and declared APIs;
POST /predict is answered by middleware (endpoint.py) and GET /metadata by the mounted
app, so their operations are written here from the request model, and the document
carries the project's title and description and the served model's identity as version.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from churnops.serving.asgi import send_json
from churnops.serving.request_model import RequestParser, request_json_schema

JSON = "application/json"
TITLE = "churnops"
DESCRIPTION = (
    "Customer churn probability from the gated ONNX model. POST /predict takes one to "
    "max_batch customers and returns one prediction per customer, in order; GET /metadata "
    "says which model is serving (lineage and metrics)."
)


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "the reason, as in the metrics"},
            "message": {"type": "string", "description": "what is wrong, naming the field"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
    }


def predict_operation(parser: RequestParser) -> dict[str, Any]:
    """The OpenAPI operation of POST /predict: its body, answers and errors."""
    error = {"content": {JSON: {"schema": _error_schema()}}}
    prediction = {
        "type": "object",
        "required": ["churn_probability", "churn"],
        "properties": {
            "churn_probability": {"type": "number", "minimum": 0, "maximum": 1},
            "churn": {"type": "boolean", "description": "probability >= decision threshold"},
        },
    }
    answer = {
        "type": "object",
        "required": ["predictions", "model_sha256"],
        "properties": {
            "predictions": {"type": "array", "items": prediction},
            "model_sha256": {"type": "string"},
        },
    }
    return {
        "tags": ["Service APIs"],
        "summary": "Churn probability of one to max_batch customers",
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": request_json_schema(parser.model)}},
        },
        "responses": {
            "200": {
                "description": "one prediction per customer, in order",
                "content": {JSON: {"schema": answer}},
            },
            **{
                code: {"description": text, **error}
                for code, text in (
                    ("400", "invalid JSON or empty body"),
                    ("408", "the body did not arrive within the traffic timeout"),
                    ("413", "too many customers or too large a body"),
                    ("415", "content-type is not application/json"),
                    ("422", "a field is missing, extra, of the wrong type or out of range"),
                    ("500", "internal error (counted; no details are returned)"),
                )
            },
        },
    }


def metadata_operation() -> dict[str, Any]:
    return {
        "tags": ["Service APIs"],
        "summary": "Which model is serving: version, commit, data hash, metrics, trained at",
        "responses": {
            "200": {
                "description": "the model card and serving identity",
                "content": {JSON: {"schema": {"type": "object"}}},
            }
        },
    }


def document(
    bentoml_spec: dict[str, Any], parser: RequestParser, model_sha256: str
) -> dict[str, Any]:
    """BentoML's document with churnops' title, description, version and endpoints."""
    spec = dict(bentoml_spec)
    spec["info"] = {"title": TITLE, "description": DESCRIPTION, "version": model_sha256[:12]}
    spec["paths"] = {
        **bentoml_spec.get("paths", {}),
        "/predict": {"post": predict_operation(parser)},
        "/metadata": {"get": metadata_operation()},
    }
    return spec


class OpenApiDocument:
    """ASGI middleware that answers GET /docs.json with `state.openapi` once it is set."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body: bytes | None = getattr(self.state, "openapi", None)
        if body is None or scope["type"] != "http" or scope["path"] != "/docs.json":
            await self.app(scope, receive, send)
            return
        await send_json(send, 200, body)
