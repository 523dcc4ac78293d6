"""The /predict endpoint without BentoML: the middleware and the handling of an internal fault.

The predictor is replaced by stand-ins (one that answers, one that fails) to reach the
paths that a real model cannot be made to take on demand; everything else is real.
"""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from churnops import cbpe, drift
from churnops.serving import openapi
from churnops.serving.app import new_app
from churnops.serving.endpoint import PredictEndpoint, answer
from churnops.serving.metrics import ServingMetrics
from churnops.serving.request_model import RequestParser, example_customer
from churnops.serving.served_model import ServedModel

SERVE = {
    "max_batch": 10,
    "drift_window": 50,
    "drift_request_share": 0.1,
    "drift_min_samples": 20,
    "psi_threshold": 0.2,
}


class HalfPredictor:
    def churn_probability(self, columns: dict) -> np.ndarray:
        return np.full(len(columns["tenure"]), 0.5, dtype=np.float32)


class BrokenPredictor:
    def churn_probability(self, columns: dict) -> np.ndarray:
        raise RuntimeError("onnxruntime exploded in /secret/path/model.onnx")


def _served(predictor: object) -> ServedModel:
    columns = {k: [v] * 10 for k, v in example_customer().items()}
    profile = drift.build_profile(columns, bins=4)
    profile[cbpe.PREDICTION] = cbpe.reference(np.linspace(0, 1, 10), lambda p: p, 0.5)
    card = {"model_sha256": "f" * 64, "decision_threshold": 0.5}
    return ServedModel(
        predictor=predictor,
        parser=RequestParser(SERVE["max_batch"]),
        metrics=ServingMetrics(card, profile, SERVE, "c0ffee", decision_threshold=0.5),
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


def _answer(served: ServedModel, body: bytes) -> tuple[int, bytes]:
    return asyncio.run(answer(served, "application/json", str(len(body)), _receive(body), 5))


def test_internal_fault_is_a_generic_500_and_counted() -> None:
    served = _served(BrokenPredictor())
    body = httpx.Request("POST", "/", json={"customers": [example_customer()]}).content
    status, payload = _answer(served, body)
    assert status == 500
    assert b"internal error" in payload and b"secret" not in payload
    assert b"Traceback" not in payload
    assert served.metrics.registry.get_sample_value("churnops_internal_errors_total") == 1
    served.metrics.flush()
    assert (
        served.metrics.registry.get_sample_value(
            "churnops_request_duration_seconds_count", {"status": "500"}
        )
        == 1
    )


def test_body_chunks_are_joined_and_a_declared_oversize_is_refused_unread() -> None:
    served = _served(HalfPredictor())
    body = httpx.Request("POST", "/", json={"customers": [example_customer()] * 2}).content
    status, payload = asyncio.run(
        answer(served, "application/json", None, _receive(body[:10], body[10:]), 5)
    )
    assert status == 200 and len(httpx.Response(200, content=payload).json()["predictions"]) == 2
    huge = str(served.parser.max_body_bytes + 1)
    status, _ = asyncio.run(answer(served, "application/json", huge, _receive(b"{"), 5))
    assert status == 413


def test_a_body_that_does_not_arrive_in_time_is_a_408_and_counted() -> None:
    served = _served(HalfPredictor())
    parts = [{"type": "http.request", "body": b'{"customers": [', "more_body": True}]

    async def receive() -> dict:  # the first part, then nothing more
        if parts:
            return parts.pop()
        await asyncio.Event().wait()
        raise AssertionError("an event nobody sets was set")

    status, payload = asyncio.run(answer(served, "application/json", None, receive, 0.05))
    assert status == 408
    assert orjson.loads(payload) == {
        "error": "timeout",
        "message": "the request body did not arrive within 0.05 s",
    }
    rejected = served.metrics.registry.get_sample_value(
        "churnops_rejected_requests_total", {"reason": "timeout"}
    )
    assert rejected == 1


def test_predict_endpoint_answers_post_predict_and_passes_everything_else_on() -> None:
    async def fallback(request) -> PlainTextResponse:
        return PlainTextResponse(f"app: {request.method} {request.url.path}")

    app = Starlette(routes=[Route("/{path:path}", fallback, methods=["GET", "POST"])])
    state = new_app().state
    wrapped = PredictEndpoint(app, state=state, timeout=5)

    async def call(method: str, path: str, **kwargs) -> httpx.Response:
        transport = httpx.ASGITransport(app=wrapped)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    customers = {"customers": [example_customer()]}
    before_load = asyncio.run(call("POST", "/predict", json=customers))
    assert before_load.text == "app: POST /predict"  # no model yet: the app decides
    state.served = _served(HalfPredictor())
    answered = asyncio.run(call("POST", "/predict", json=customers))
    assert answered.json()["predictions"] == [{"churn_probability": 0.5, "churn": True}]
    assert asyncio.run(call("GET", "/predict")).text == "app: GET /predict"
    assert asyncio.run(call("POST", "/metadata")).text == "app: POST /metadata"
    rejected = asyncio.run(
        call("POST", "/predict", content=b"x", headers={"content-type": "text/csv"})
    )
    assert rejected.status_code == 415 and rejected.json()["error"] == "unsupported_media_type"


def test_the_openapi_document_has_the_project_and_the_model_and_documents_predict() -> None:
    bentoml_spec = {"info": {"title": "churnops", "version": "None"}, "paths": {"/livez": {}}}
    spec = openapi.document(bentoml_spec, RequestParser(7), "ab" * 32)
    assert spec["info"]["version"] == "ab" * 6 and "churn" in spec["info"]["description"]
    assert set(spec["paths"]) == {"/livez", "/predict", "/metadata"}
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    customers = body["schema"]["properties"]["customers"]
    assert customers["maxItems"] == 7
    assert set(customers["items"]["properties"]) == set(example_customer())
    assert bentoml_spec["paths"] == {"/livez": {}}  # BentoML's document is not changed


def test_metadata_waits_for_the_model_then_describes_it() -> None:
    app = new_app()

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/metadata")

    assert asyncio.run(get()).status_code == 503
    app.state.served = _served(HalfPredictor())
    assert asyncio.run(get()).json() == {"model_sha256": "f" * 64}
