"""Bounded labels for BentoML's request metrics: a path no route serves is `/unknown`.

BentoML 1.4.40 labels its HTTP metrics with the raw request path, 404s included, so
every new path adds about 20 series to the multiprocess files under BENTOML_HOME (on the
pod's 128 Mi emptyDir) and to what Prometheus scrapes: a scan of random paths fills the
volume. The fix hands BentoML's RunnerTrafficMetricsMiddleware a copy of the scope whose
path is a known route or a bounded label, and the app the real scope, so routing and
answers are unchanged. service.py applies it to the pinned BentoML only.
"""

from __future__ import annotations

import copy

from bentoml._internal.server.http import instruments
from starlette.types import Receive, Scope, Send

from churnops.serving import bentoml_pin

BENTOML_CALL = instruments.RunnerTrafficMetricsMiddleware.__call__
# The service's routes (BentoML's own and churnops'); folders of files get one label each.
ROUTES = frozenset(
    {"/", "/docs.json", "/schema.json", "/predict", "/metadata"}
    | {"/livez", "/readyz", "/healthz", "/metrics"}
)
FOLDERS = ("/static_content", "/assets")
UNKNOWN = "/unknown"


def label(path: str) -> str:
    """The metrics label of a request path: the route, its folder, or `/unknown`."""
    if path in ROUTES:
        return path
    return next((folder for folder in FOLDERS if path.startswith(folder + "/")), UNKNOWN)


async def _call(
    self: instruments.RunnerTrafficMetricsMiddleware, scope: Scope, receive: Receive, send: Send
) -> None:
    path = scope.get("path", "")
    if path in ROUTES or not scope["type"].startswith("http"):
        await BENTOML_CALL(self, scope, receive, send)
        return
    if not self._is_setup:
        self._setup()
    app = self.app

    async def with_real_scope(_: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)

    labelled = copy.copy(self)  # this request's: BentoML's metrics, the real app behind
    labelled.app = with_real_scope
    await BENTOML_CALL(labelled, {**scope, "path": label(path)}, receive, send)


def apply() -> bool:
    """Install the fix if BentoML is the version it was written for; whether it was."""
    if not bentoml_pin.pinned("its request metrics keep raw paths as labels"):
        return False
    instruments.RunnerTrafficMetricsMiddleware.__call__ = _call
    return True
