"""Scores customers with the ONNX model through onnxruntime; imports no serving framework.

The same predictor serves HTTP, batch scoring, the export parity check and tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from churnops import schema


def feed(columns: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
    """onnxruntime inputs, one (n, 1) array per feature: float32 numbers, strings for categories.

    Missing numbers (None) become NaN (numpy converts them), which the model's imputer fills.
    """
    inputs: dict[str, np.ndarray] = {}
    for name in schema.NUMERIC_FEATURES:
        inputs[name] = np.asarray(columns[name], dtype=np.float32).reshape(-1, 1)
    for name in schema.CATEGORICAL_FEATURES:
        inputs[name] = np.asarray(columns[name], dtype=object).reshape(-1, 1)
    return inputs


class Predictor:
    """An ONNX churn model loaded once, scoring batches of customers."""

    def __init__(self, model: Path | bytes) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            model if isinstance(model, bytes) else str(model),
            options,
            providers=["CPUExecutionProvider"],
        )
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def churn_probability(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """P(churn) for each customer, in input order."""
        _, probabilities = self.session.run(None, feed(columns))
        return probabilities[:, 1]
