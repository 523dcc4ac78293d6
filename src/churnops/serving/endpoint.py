"""POST /predict as ASGI middleware: body in, JSON out, every outcome counted and timed.

Installed with BentoML's `add_asgi_middleware` and moved ahead of BentoML's own
middlewares (bentoml_predict_first.py), it answers before BentoML's request metrics,
tracing and timeout, routing, Starlette's request objects and FastAPI's per-request
machinery, which the profile showed costing more than the prediction (docs/serving.md).
The body must arrive within the traffic timeout (408 otherwise), is validated by
request_model straight from its bytes and the answer is serialised with orjson: no
per-request schema work. Every other request, and /predict before a model is loaded,
goes on to the app.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from starlette.datastructures import State
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from churnops.serving.asgi import send_json
from churnops.serving.request_model import RequestParser, RequestRejected
from churnops.serving.served_model import ServedModel

logger = logging.getLogger("churnops.serving")

INTERNAL_ERROR = b'{"error":"internal","message":"internal error; it has been logged"}'


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


async def read_body_within(
    parser: RequestParser, declared: str | None, receive: Receive, timeout: float
) -> bytes:
    """The body, if it has all arrived within `timeout` seconds (408 otherwise)."""
    try:
        async with asyncio.timeout(timeout):
            return await read_body(parser, declared, receive)
    except TimeoutError:
        message = f"the request body did not arrive within {timeout:g} s"
        raise RequestRejected(408, "timeout", message) from None


async def answer(
    served: ServedModel,
    content_type: str | None,
    content_length: str | None,
    receive: Receive,
    timeout: float,
) -> tuple[int, bytes]:
    """(status, JSON body) of POST /predict; every outcome is counted and timed."""
    metrics = served.metrics
    started = time.perf_counter()
    try:
        served.parser.check_content_type(content_type)
        body = await read_body_within(served.parser, content_length, receive, timeout)
        status, payload = 200, served.predict(served.parser.columns(body))
    except RequestRejected as problem:
        metrics.rejected.labels(problem.reason).inc()
        status, payload = problem.status, orjson.dumps(problem.body())
    except ClientDisconnect:
        raise
    except Exception:
        logger.exception("prediction failed")
        metrics.internal_errors.inc()
        status, payload = 500, INTERNAL_ERROR
    metrics.observe_request(status, time.perf_counter() - started)
    return status, payload


class PredictEndpoint:
    """ASGI middleware that answers POST /predict itself once `state.served` holds a model.

    `timeout`: seconds the whole body may take to arrive (the service's traffic timeout).
    """

    def __init__(self, app: ASGIApp, state: State, timeout: float) -> None:
        self.app = app
        self.state = state
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served: ServedModel | None = getattr(self.state, "served", None)
        if (
            served is None
            or scope["type"] != "http"
            or scope["path"] != "/predict"
            or scope["method"] != "POST"
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type, content_length = headers.get(b"content-type"), headers.get(b"content-length")
        try:
            status, body = await answer(
                served,
                content_type.decode("latin-1") if content_type is not None else None,
                content_length.decode("latin-1") if content_length is not None else None,
                receive,
                self.timeout,
            )
        except ClientDisconnect:
            return
        await send_json(send, status, body)
