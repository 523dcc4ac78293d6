"""api.py without BentoML: the /predict middleware and the handling of an internal fault.

The predictor is replaced by stand-ins (one that answers, one that fails) to reach the
paths that a real model cannot be made to take on demand; everything else is real.
"""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from churnops import drift
from churnops.api import ModelServer, PredictEndpoint, new_app
from churnops.monitoring import ServingMetrics
from churnops.request_model import RequestParser, example_customer

SERVE = {"max_batch": 10, "drift_window": 50, "drift_min_samples": 20, "psi_threshold": 0.2}


class HalfPredictor:
    def churn_probability(self, columns: dict) -> np.ndarray:
        return np.full(len(columns["tenure"]), 0.5, dtype=np.float32)


class BrokenPredictor:
    def churn_probability(self, columns: dict) -> np.ndarray:
        raise RuntimeError("onnxruntime exploded in /secret/path/model.onnx")


def _server(predictor: object) -> ModelServer:
    columns = {k: [v] * 10 for k, v in example_customer().items()}
    profile = drift.build_profile(columns, bins=4)
    card = {"model_sha256": "f" * 64, "decision_threshold": 0.5}
    return ModelServer(
        predictor=predictor,  # type: ignore[arg-type]
        parser=RequestParser(SERVE["max_batch"]),
        metrics=ServingMetrics(card, profile, SERVE, "c0ffee"),
        metadata={"model_sha256": "f" * 64},
        decision_threshold=0.5,
    )


def _receive(*parts: bytes):
    """An ASGI receive that delivers the body in `parts`."""
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]

    async def receive() -> dict:
        return messages.pop(0)

    return receive


def _answer(server: ModelServer, body: bytes) -> tuple[int, bytes]:
    return asyncio.run(server.answer("application/json", str(len(body)), _receive(body)))


def test_internal_fault_is_a_generic_500_and_counted() -> None:
    server = _server(BrokenPredictor())
    body = httpx.Request("POST", "/", json={"customers": [example_customer()]}).content
    status, answer = _answer(server, body)
    assert status == 500
    assert b"internal error" in answer and b"secret" not in answer and b"Traceback" not in answer
    assert server.metrics.registry.get_sample_value("churnops_internal_errors_total") == 1
    assert (
        server.metrics.registry.get_sample_value(
            "churnops_request_duration_seconds_count", {"status": "500"}
        )
        == 1
    )


def test_body_chunks_are_joined_and_a_declared_oversize_is_refused_unread() -> None:
    server = _server(HalfPredictor())
    body = httpx.Request("POST", "/", json={"customers": [example_customer()] * 2}).content
    status, answer = asyncio.run(
        server.answer("application/json", None, _receive(body[:10], body[10:]))
    )
    assert status == 200 and len(httpx.Response(200, content=answer).json()["predictions"]) == 2
    huge = str(server.parser.max_body_bytes + 1)
    status, _ = asyncio.run(server.answer("application/json", huge, _receive(b"{")))
    assert status == 413


def test_predict_endpoint_answers_post_predict_and_passes_everything_else_on() -> None:
    async def fallback(request) -> PlainTextResponse:
        return PlainTextResponse(f"app: {request.method} {request.url.path}")

    app = Starlette(routes=[Route("/{path:path}", fallback, methods=["GET", "POST"])])
    api = new_app()
    wrapped = PredictEndpoint(app, api=api)

    async def call(method: str, path: str, **kwargs) -> httpx.Response:
        transport = httpx.ASGITransport(app=wrapped)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    customers = {"customers": [example_customer()]}
    before_load = asyncio.run(call("POST", "/predict", json=customers))
    assert before_load.text == "app: POST /predict"  # no model yet: the app decides
    api.state.server = _server(HalfPredictor())
    answered = asyncio.run(call("POST", "/predict", json=customers))
    assert answered.json()["predictions"] == [{"churn_probability": 0.5, "churn": True}]
    assert asyncio.run(call("GET", "/predict")).text == "app: GET /predict"
    assert asyncio.run(call("POST", "/metadata")).text == "app: POST /metadata"
    rejected = asyncio.run(
        call("POST", "/predict", content=b"x", headers={"content-type": "text/csv"})
    )
    assert rejected.status_code == 415 and rejected.json()["error"] == "unsupported_media_type"
