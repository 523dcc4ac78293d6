"""The reference limit for Python serving: bare Starlette + onnxruntime, nothing else.

No validation, no metrics, no drift: parse the JSON, build the arrays, run the model.
bench/serving.py serves it with uvicorn beside the BentoML service, on the same model.
Run: CHURNOPS_MODEL_DIR=models uvicorn --app-dir bench reference_app:app --port 3001
"""

from __future__ import annotations

import contextlib
import operator
import os
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from churnops import schema
from churnops.predictor import Predictor

VALUES = operator.itemgetter(*schema.FEATURE_NAMES)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    model = Path(os.environ.get("CHURNOPS_MODEL_DIR", "models")) / "model.onnx"
    app.state.predictor = Predictor(model)
    yield


async def predict(request: Request) -> Response:
    customers = orjson.loads(await request.body())["customers"]
    rows = map(VALUES, customers)
    columns = dict(zip(schema.FEATURE_NAMES, zip(*rows, strict=True), strict=True))
    probabilities = request.app.state.predictor.churn_probability(columns).tolist()
    body = {"predictions": [{"churn_probability": p} for p in probabilities]}
    return Response(orjson.dumps(body), media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])], lifespan=lifespan)
