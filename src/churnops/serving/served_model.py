"""The model being served: the predictor, the request parser, the metrics and the metadata.

Imports no BentoML and no ASGI: the endpoint (endpoint.py) hands it validated columns
and sends back the JSON it returns.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from churnops import card as model_card
from churnops.config import MODEL_FILE, PROFILE_FILE, read_json
from churnops.predictor import Predictor
from churnops.serving.metrics import ServingMetrics
from churnops.serving.request_model import RequestParser, example_customer

CARD_KEYS = (
    "model_sha256",
    "estimator",
    "data_hash",
    "params_hash",
    "mlflow_run_id",
    "trained_at",
    "trained_from_commit",
    "decision_threshold",
    "metrics",
)


@dataclass
class ServedModel:
    """A loaded model and everything answering a prediction request needs."""

    predictor: Predictor
    parser: RequestParser
    metrics: ServingMetrics
    metadata: dict[str, Any]
    decision_threshold: float

    @classmethod
    def load(cls, directory: Path, serve: Mapping[str, Any], git_commit: str) -> ServedModel:
        card = model_card.read_card(directory)
        threshold = model_card.decision_threshold(card)
        profile = read_json(directory / PROFILE_FILE)
        metadata = {key: card.get(key) for key in CARD_KEYS}
        metadata |= {
            "git_commit": git_commit,
            "image": os.environ.get("CHURNOPS_IMAGE", "unknown"),
            "serve": dict(serve),
        }
        return cls(
            predictor=Predictor(directory / MODEL_FILE),
            parser=RequestParser(int(serve["max_batch"])),
            metrics=ServingMetrics(card, profile, serve, git_commit, threshold),
            metadata=metadata,
            decision_threshold=threshold,
        )

    def warm_up(self) -> None:
        """Score one customer without counting it, so the first request is not the slow one."""
        columns = {name: [value] for name, value in example_customer().items()}
        probabilities = self.predictor.churn_probability(columns)
        if not np.all((probabilities >= 0) & (probabilities <= 1)):
            raise RuntimeError(f"warm-up prediction is not a probability: {probabilities}")

    def predict(self, columns: Mapping[str, list[Any]]) -> bytes:
        """The JSON answer for valid columns; counts the predictions and feeds the drift window."""
        probabilities = self.predictor.churn_probability(columns).tolist()
        if not all(0.0 <= p <= 1.0 for p in probabilities):
            raise ValueError("the model returned a value outside [0, 1]")
        self.metrics.observe_predictions(columns, probabilities)
        threshold = self.decision_threshold
        predictions = [{"churn_probability": p, "churn": p >= threshold} for p in probabilities]
        return orjson.dumps(
            {"predictions": predictions, "model_sha256": self.metadata["model_sha256"]}
        )
