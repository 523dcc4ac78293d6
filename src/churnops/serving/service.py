"""The BentoML service: a thin adapter that serves the churnops model inside BentoML.

BentoML runs the workers and gives /livez, /readyz, /metrics, tracing and its own
request metrics. POST /predict is declared as a BentoML API (`predict`, typed with the
schema's customer), so /schema.json and BentoML's Sync/AsyncHTTPClient know it; over HTTP
the PredictEndpoint middleware answers it first, ahead of BentoML's own middlewares
(bentoml_predict_first.py), with the same parser and answer, GET
/metadata by the mounted app and /docs.json by the OpenApiDocument middleware; none of
them imports BentoML (DESIGN.md: BentoML's per-request IO layer cost more than the
model). /readyz answers 200 once the model is loaded and a warm-up prediction succeeded.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import bentoml
import orjson

from churnops.serving import (
    bentoml_paths,
    bentoml_predict_first,
    bentoml_timeout,
    openapi,
    request_model,
    settings,
)
from churnops.serving.app import new_app
from churnops.serving.endpoint import PredictEndpoint
from churnops.serving.served_model import ServedModel

bentoml_timeout.apply()
bentoml_paths.apply()
bentoml_predict_first.apply()

app = new_app()
Customer = request_model.customer_model()


def _model_dir(service: bentoml.Service) -> Path:
    """CHURNOPS_MODEL_DIR, else the exact model version the Bento was built with, else models/."""
    if not os.environ.get("CHURNOPS_MODEL_DIR") and service.bento is not None:
        tags = service.bento.info.all_models
        (tag,) = (m.tag for m in tags if m.tag.name == settings.BENTO_MODEL)
        return Path(bentoml.models.get(tag).path)
    return settings.model_dir()


@bentoml.service(
    name="churnops",
    workers="cpu_count",  # the cgroup's CPU limit in a pod, the cores elsewhere
    traffic={"timeout": 30},  # also the time a /predict body may take to arrive
    metrics={"enabled": True},
    # At thousands of requests per second a log line per request costs more than the
    # prediction; churnops_* metrics count every request instead (docs/serving.md).
    logging={"access": {"enabled": False}},
    # Spans are created even when none is sampled: trace everything but the hot endpoint
    # (docs/serving.md).
    tracing={"excluded_urls": ["/predict"]},
)
@bentoml.asgi_app(app, path="/")
class Churnops:
    """Customer churn probability from the ONNX model."""

    def __init__(self) -> None:
        serve = settings.serve_params(vars(bentoml.use_arguments()))
        bento = Churnops.bento
        labels = bento.info.labels if bento is not None else None
        served = ServedModel.load(_model_dir(Churnops), serve, settings.serving_commit(labels))
        served.warm_up()
        served.metrics.start()
        spec = openapi.document(
            Churnops.openapi_spec.asdict(), served.parser, served.metadata["model_sha256"]
        )
        app.state.openapi = orjson.dumps(spec)
        app.state.served = served
        # What is loaded now lives as long as the process: keep it out of the collector's
        # full passes, which otherwise stalled requests for about 100 ms (p99 5x the bare
        # app's; bench/RESULTS-serving.md).
        gc.freeze()
        self.ready = True

    def __is_ready__(self) -> bool:
        return self.ready

    @bentoml.api(route="/predict")
    def predict(self, customers: list[Customer]) -> dict[str, Any]:
        """Churn probability and decision for each customer (1 to max_batch of them)."""
        served = app.state.served
        body = orjson.dumps({"customers": customers})
        return orjson.loads(served.predict(served.parser.columns(body)))


Churnops.add_asgi_middleware(
    PredictEndpoint, state=app.state, timeout=Churnops.config["traffic"]["timeout"]
)
Churnops.add_asgi_middleware(openapi.OpenApiDocument, state=app.state)
