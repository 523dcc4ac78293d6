"""The fix of BentoML's TimeoutMiddleware: the same answers and 504s, and no timer left armed."""

from __future__ import annotations

import asyncio
import time

import pytest
from bentoml._internal.server.http import traffic

from churnops.serving import bentoml_timeout

SCOPE = {"type": "http", "method": "POST", "path": "/predict", "headers": []}


async def _fast_app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _run(call, app, timeout: float) -> tuple[list[dict], list[asyncio.TimerHandle]]:
    """(messages sent, timers armed) of one request through the middleware's `call`."""
    loop = asyncio.get_running_loop()
    timers: list[asyncio.TimerHandle] = []
    call_later = loop.call_later

    def recording_call_later(*args, **kwargs) -> asyncio.TimerHandle:
        timers.append(call_later(*args, **kwargs))
        return timers[-1]

    loop.call_later = recording_call_later
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    await call(traffic.TimeoutMiddleware(app, timeout=timeout), SCOPE, receive, send)
    return sent, timers


def test_bentomls_own_middleware_leaves_its_timer_armed() -> None:
    """Why the fix exists; when this fails, BentoML has fixed it and the fix can go."""
    sent, timers = asyncio.run(_run(bentoml_timeout.BENTOML_CALL, _fast_app, timeout=30))
    assert sent[0]["status"] == 200
    assert len(timers) == 1 and not timers[0].cancelled()


def test_fixed_middleware_answers_and_disarms_its_timer() -> None:
    sent, timers = asyncio.run(_run(bentoml_timeout._call, _fast_app, timeout=30))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"
    assert len(timers) == 1 and timers[0].cancelled()


def test_fixed_middleware_still_answers_504_and_cancels_a_slow_request() -> None:
    cancelled = []

    async def slow_app(scope, receive, send) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        await _fast_app(scope, receive, send)

    sent, _ = asyncio.run(_run(bentoml_timeout._call, slow_app, timeout=0.05))
    assert sent[0]["status"] == 504 and b"0.05 seconds" in sent[1]["body"]
    assert cancelled == [True]


def test_fixed_middleware_passes_on_an_early_error_at_once_where_bentomls_swallows_it() -> None:
    async def failing_app(scope, receive, send) -> None:
        raise RuntimeError("failed before answering")

    with pytest.raises(RuntimeError, match="failed before answering"):
        asyncio.run(_run(bentoml_timeout._call, failing_app, timeout=30))
    began = time.monotonic()
    sent, _ = asyncio.run(_run(bentoml_timeout.BENTOML_CALL, failing_app, timeout=0.2))
    assert sent == [] and time.monotonic() - began >= 0.2  # no answer, no error, after 0.2 s


def test_apply_installs_the_fix_on_the_pinned_bentoml(monkeypatch: pytest.MonkeyPatch) -> None:
    # undone after the test
    monkeypatch.setattr(traffic.TimeoutMiddleware, "__call__", bentoml_timeout.BENTOML_CALL)
    assert bentoml_timeout.apply()
    assert traffic.TimeoutMiddleware.__call__ is bentoml_timeout._call
