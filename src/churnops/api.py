"""The HTTP API (POST /predict, GET /metadata) as an ASGI app; imports no BentoML.

service.py mounts this app into BentoML, which adds /livez, /readyz, /metrics and its
own instrumentation, and installs PredictEndpoint, which answers POST /predict before
routing. Either way the body is validated by request_model straight from its bytes and
the answer is serialised with orjson: no per-request schema work. FastAPI is here for
its OpenAPI document (BentoML merges it into /docs.json); routes declare schemas by hand.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from churnops import lineage
from churnops.config import CARD_FILE, MODEL_FILE, MODELS_DIR, PROFILE_FILE, load_params, read_json
from churnops.monitoring import ServingMetrics
from churnops.predictor import Predictor
from churnops.request_model import (
    RequestParser,
    RequestRejected,
    example_customer,
    request_json_schema,
)

logger = logging.getLogger("churnops.api")

SERVE_KEYS = ("max_batch", "drift_window", "drift_min_samples", "psi_threshold")
CARD_KEYS = (
    "model_sha256",
    "estimator",
    "data_hash",
    "params_hash",
    "mlflow_run_id",
    "trained_at",
    "trained_from_commit",
    "decision_threshold",
    "metrics",
)
JSON = "application/json"
INTERNAL_ERROR = b'{"error":"internal","message":"internal error; it has been logged"}'


def serve_params(arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `serve` params: from Bento arguments when given (baked at build), else params.yaml."""
    if arguments and all(key in arguments for key in SERVE_KEYS):
        values = arguments
    else:
        values = load_params()["serve"]
    return {key: values[key] for key in SERVE_KEYS}


def model_dir() -> Path:
    return Path(os.environ.get("CHURNOPS_MODEL_DIR") or MODELS_DIR)


def serving_commit(labels: Mapping[str, str] | None = None) -> str:
    """The commit being served: CHURNOPS_GIT_COMMIT, else the Bento's label, else Git's HEAD."""
    return (
        os.environ.get("CHURNOPS_GIT_COMMIT")
        or (labels or {}).get("git_commit")
        or lineage.git_commit()
    )


@dataclass
class ModelServer:
    """Everything a request needs: the predictor, the parser, the metrics, the metadata."""

    predictor: Predictor
    parser: RequestParser
    metrics: ServingMetrics
    metadata: dict[str, Any]
    decision_threshold: float

    @classmethod
    def load(cls, directory: Path, serve: Mapping[str, Any], git_commit: str) -> ModelServer:
        card = read_json(directory / CARD_FILE)
        profile = read_json(directory / PROFILE_FILE)
        metadata = {key: card.get(key) for key in CARD_KEYS}
        metadata |= {
            "git_commit": git_commit,
            "image": os.environ.get("CHURNOPS_IMAGE", "unknown"),
            "serve": dict(serve),
        }
        return cls(
            predictor=Predictor(directory / MODEL_FILE),
            parser=RequestParser(int(serve["max_batch"])),
            metrics=ServingMetrics(card, profile, serve, git_commit),
            metadata=metadata,
            decision_threshold=float(card.get("decision_threshold", 0.5)),
        )

    def warm_up(self) -> None:
        """Score one customer without counting it, so the first request is not the slow one."""
        columns = {name: [value] for name, value in example_customer().items()}
        probabilities = self.predictor.churn_probability(columns)
        if not np.all((probabilities >= 0) & (probabilities <= 1)):
            raise RuntimeError(f"warm-up prediction is not a probability: {probabilities}")

    def predict(self, columns: Mapping[str, list[Any]]) -> bytes:
        """The JSON answer for valid columns; counts the predictions and feeds the drift window."""
        probabilities = self.predictor.churn_probability(columns).tolist()
        if not all(0.0 <= p <= 1.0 for p in probabilities):
            raise ValueError("the model returned a value outside [0, 1]")
        self.metrics.observe_predictions(columns, probabilities)
        threshold = self.decision_threshold
        predictions = [{"churn_probability": p, "churn": p >= threshold} for p in probabilities]
        return orjson.dumps(
            {"predictions": predictions, "model_sha256": self.metadata["model_sha256"]}
        )

    async def answer(
        self, content_type: str | None, content_length: str | None, receive: Receive
    ) -> tuple[int, bytes]:
        """(status, JSON body) of POST /predict; every outcome is counted and timed."""
        metrics = self.metrics
        started = time.perf_counter()
        try:
            self.parser.check_content_type(content_type)
            body = await read_body(self.parser, content_length, receive)
            status, answer = 200, self.predict(self.parser.columns(body))
        except RequestRejected as problem:
            metrics.rejected.labels(problem.reason).inc()
            status, answer = problem.status, orjson.dumps(problem.body())
        except ClientDisconnect:
            raise
        except Exception:
            logger.exception("prediction failed")
            metrics.internal_errors.inc()
            status, answer = 500, INTERNAL_ERROR
        metrics.observe_request(status, time.perf_counter() - started)
        return status, answer


async def read_body(parser: RequestParser, declared: str | None, receive: Receive) -> bytes:
    """The body, refusing early (413) when it is declared or turns out larger than allowed."""
    if declared is not None and declared.isdigit():
        parser.check_length(int(declared))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        parser.check_length(size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class PredictEndpoint:
    """ASGI middleware that answers POST /predict itself, once the model is loaded.

    Installed with BentoML's `add_asgi_middleware`, it runs inside BentoML's metrics,
    timeout and concurrency middlewares but before routing, Starlette's request objects
    and FastAPI's per-request machinery, which the profile showed costing more than the
    prediction (docs/serving.md). Everything else, and /predict before the model is
    loaded, goes on to the app. The FastAPI route documents the same endpoint.
    """

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server: ModelServer | None = getattr(self.api.state, "server", None)
        if (
            server is None
            or scope["type"] != "http"
            or scope["path"] != "/predict"
            or scope["method"] != "POST"
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type, content_length = headers.get(b"content-type"), headers.get(b"content-length")
        try:
            status, body = await server.answer(
                content_type.decode("latin-1") if content_type is not None else None,
                content_length.decode("latin-1") if content_length is not None else None,
                receive,
            )
        except ClientDisconnect:
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


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


def _predict_openapi(server: ModelServer) -> dict[str, Any]:
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
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": request_json_schema(server.parser.model)}},
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
                    ("413", "too many customers or too large a body"),
                    ("415", "content-type is not application/json"),
                    ("422", "a field is missing, extra, of the wrong type or out of range"),
                    ("500", "internal error (counted; no details are returned)"),
                )
            },
        },
    }


def new_app() -> FastAPI:
    """An app without routes; `add_routes` gives it a loaded model (BentoML mounts it first)."""
    return FastAPI(
        title="churnops",
        summary="Customer churn probability",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )


def add_routes(app: FastAPI, server: ModelServer) -> None:
    """Serve `server` on `app`: POST /predict and GET /metadata."""
    app.state.server = server

    @app.post(
        "/predict",
        summary="Churn probability of one to max_batch customers",
        openapi_extra=_predict_openapi(server),
    )
    async def predict(request: Request) -> Response:
        status, body = await server.answer(
            request.headers.get("content-type"),
            request.headers.get("content-length"),
            request.receive,
        )
        return Response(body, status, media_type=JSON)

    @app.get(
        "/metadata",
        summary="Which model is serving: version, commit, data hash, metrics, trained at",
        responses={200: {"description": "the model card and serving identity"}},
    )
    async def metadata() -> JSONResponse:
        return JSONResponse(server.metadata)
