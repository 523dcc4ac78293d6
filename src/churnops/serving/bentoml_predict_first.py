"""POST /predict answered ahead of BentoML's per-request middlewares.

BentoML 1.4.40 puts a service's ASGI middlewares behind its own: request metrics (a
histogram, a counter and a gauge, each written to multiprocess mmap files twice a
request), OpenTelemetry and the traffic timeout. For /predict they add nothing churnops
lacks: `churnops_request_duration_seconds` counts and times every answer by status (the
HPA, the alerts and the dashboard read it), tracing excludes /predict, and PredictEndpoint
bounds the body read by the traffic timeout itself. Their cost was most of the gap to a
bare endpoint (bench/RESULTS-serving.md). The fix puts PredictEndpoint first in BentoML's
list; every other request, and /predict before the model is loaded, still goes through
all of BentoML's middlewares. service.py applies it to the pinned BentoML only;
tests/code/test_bentoml_predict_first.py fails once BentoML changes the list it reorders.
"""

from __future__ import annotations

from _bentoml_impl.server.app import ServiceAppFactory
from starlette.middleware import Middleware

from churnops.serving import bentoml_pin
from churnops.serving.endpoint import PredictEndpoint

BENTOML_MIDDLEWARES = ServiceAppFactory.middlewares  # the property `apply` replaces


def _middlewares(self: ServiceAppFactory) -> list[Middleware]:
    stack = BENTOML_MIDDLEWARES.fget(self)
    first = [m for m in stack if m.cls is PredictEndpoint]
    return first + [m for m in stack if m.cls is not PredictEndpoint]


def apply() -> bool:
    """Install the fix if BentoML is the version it was written for; whether it was."""
    if not bentoml_pin.pinned("/predict stays behind BentoML's middlewares"):
        return False
    ServiceAppFactory.middlewares = property(_middlewares)
    return True
