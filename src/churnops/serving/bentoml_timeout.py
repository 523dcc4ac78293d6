"""A fix for BentoML's TimeoutMiddleware, which leaves one live timer behind per request.

BentoML 1.4.40 arms `loop.call_later(timeout, ...)` for every request and never
cancels it, so a worker serving N requests/s carries N x timeout pending timers
(60,000 at 2,000 req/s and a 30 s timeout). Every request pays for the bigger timer
heap, and every timer still fires, uselessly, `timeout` seconds later. Measured on a
single-customer /predict: about 70 us of the worker's ~550 us of CPU per request
(docs/serving.md). The fixed `__call__` below is BentoML's (Apache-2.0) with the timer
cancelled once the request is done, and with the wait ended when the app finishes
without answering. BentoML's waits out the full timeout then: after a client
disconnects, or when the app raises before answering, and in that case it returns
without the error, whose traceback is lost. service.py applies the fix to the pinned
BentoML only; tests/code/test_bentoml_timeout.py fails once BentoML fixes the timer.
"""

from __future__ import annotations

import asyncio

from bentoml._internal.server.http import traffic
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from churnops.serving import bentoml_pin

BENTOML_CALL = traffic.TimeoutMiddleware.__call__  # what `apply` replaces


async def _call(
    self: traffic.TimeoutMiddleware, scope: Scope, receive: Receive, send: Send
) -> None:
    if scope["type"] not in ("http", "websocket"):
        await self.app(scope, receive, send)
        return
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message: dict) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    fut.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
    try:
        await waiter
    except TimeoutError:
        if fut.cancel():
            error = f"Not able to process the request in {self.timeout} seconds"
            await JSONResponse({"error": error}, status_code=504)(scope, receive, send)
    else:
        await fut
    finally:
        timer.cancel()


def apply() -> bool:
    """Install the fix if BentoML is the version it was written for; whether it was."""
    if not bentoml_pin.pinned("its TimeoutMiddleware is left as it is"):
        return False
    traffic.TimeoutMiddleware.__call__ = _call
    return True
