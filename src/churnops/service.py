"""The BentoML service: a thin adapter that mounts the churnops API (api.py) into BentoML.

BentoML runs the workers and gives /livez, /readyz, /metrics, tracing and its own
request metrics; POST /predict and GET /metadata are served by the mounted app (and
/predict by its PredictEndpoint middleware), which validates requests from their bytes
and scores with onnxruntime (DESIGN.md: BentoML's per-request IO layer cost more than
the model). /readyz answers 200 once the model is
loaded and a warm-up prediction has succeeded.

Where the model comes from: CHURNOPS_MODEL_DIR if set; else, inside a Bento, the model
the Bento carries (imported by `churnops bento`); else models/ of the working tree.
The `serve` params come from the Bento's arguments, baked in at build time, or params.yaml.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import bentoml

from churnops import api, bentoml_timeout

MODEL_NAME = "churnops-model"

bentoml_timeout.apply()

app = api.new_app()


def _model_dir(service: bentoml.Service) -> Path:
    """CHURNOPS_MODEL_DIR, else the exact model version the Bento was built with, else models/."""
    if not os.environ.get("CHURNOPS_MODEL_DIR") and service.bento is not None:
        (tag,) = (m.tag for m in service.bento.info.all_models if m.tag.name == MODEL_NAME)
        return Path(bentoml.models.get(tag).path)
    return api.model_dir()


@bentoml.service(
    name="churnops",
    workers=1,
    traffic={"timeout": 30},
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
        serve = api.serve_params(vars(bentoml.use_arguments()))
        bento = Churnops.bento
        labels = bento.info.labels if bento is not None else None
        self.server = api.ModelServer.load(_model_dir(Churnops), serve, api.serving_commit(labels))
        self.server.warm_up()
        api.add_routes(app, self.server)
        # What is loaded now lives as long as the process: keep it out of the collector's
        # full passes, which otherwise stalled requests for about 100 ms (p99 5x the bare
        # app's; bench/RESULTS-serving.md).
        gc.freeze()
        self.ready = True

    def __is_ready__(self) -> bool:
        return self.ready


Churnops.add_asgi_middleware(api.PredictEndpoint, api=app)
