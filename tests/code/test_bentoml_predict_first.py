"""/predict ahead of BentoML's middlewares: the pinned BentoML's order, and the reordering."""

from __future__ import annotations

import pytest
from _bentoml_impl.server.app import ServiceAppFactory
from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware
from bentoml._internal.server.http.traffic import TimeoutMiddleware

from churnops.serving import bentoml_predict_first, openapi
from churnops.serving.endpoint import PredictEndpoint
from churnops.serving.service import Churnops


def _factory() -> ServiceAppFactory:
    Churnops.inject_config()  # as Service.to_asgi does before building the app
    return ServiceAppFactory(Churnops)


def _classes(factory: ServiceAppFactory) -> list[str]:
    return [m.cls.__name__ for m in factory.middlewares]


def test_bentoml_puts_the_service_middlewares_behind_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ServiceAppFactory, "middlewares", bentoml_predict_first.BENTOML_MIDDLEWARES)
    names = _classes(_factory())
    assert names.index(RunnerTrafficMetricsMiddleware.__name__) < names.index("PredictEndpoint")
    assert names.index(TimeoutMiddleware.__name__) < names.index("PredictEndpoint")
    assert names.index("OpenTelemetryMiddleware") < names.index("PredictEndpoint")


def test_predict_endpoint_comes_first_and_the_rest_keep_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # undone after the test
    monkeypatch.setattr(ServiceAppFactory, "middlewares", bentoml_predict_first.BENTOML_MIDDLEWARES)
    bentoml_order = _classes(_factory())
    assert bentoml_predict_first.apply()
    stack = _factory().middlewares
    assert stack[0].cls is PredictEndpoint
    assert stack[0].kwargs["timeout"] == Churnops.config["traffic"]["timeout"] == 30
    rest = [name for name in bentoml_order if name != "PredictEndpoint"]
    assert [m.cls.__name__ for m in stack[1:]] == rest
    assert any(m.cls is openapi.OpenApiDocument for m in stack[1:])
