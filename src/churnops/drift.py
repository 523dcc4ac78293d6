"""Population stability: the training reference profile and the PSI of recent data against it.

The profile is written beside the model by `export`; the service keeps a sliding window
of recent customers and compares it with the profile feature by feature.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from churnops import schema

_FLOOR = 1e-4  # keeps ln(a/e) finite when a bucket is empty on one side


def _numeric_edges(values: np.ndarray, bins: int) -> list[float]:
    present = values[~np.isnan(values)]
    quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    return [round(float(q), 6) for q in np.unique(quantiles)]


def bucket_counts(feature: Mapping[str, Any], values: Sequence[Any]) -> np.ndarray:
    """Counts of values per bucket of a profiled feature; the last bucket is 'missing/other'."""
    if feature["kind"] == "numeric":
        x = np.asarray(values, dtype="float64")
        missing = np.isnan(x)
        index = np.searchsorted(np.asarray(feature["edges"]), x[~missing], side="right")
        counts = np.bincount(index, minlength=len(feature["edges"]) + 1)
        return np.append(counts, missing.sum())
    position = {value: i for i, value in enumerate(feature["values"])}
    other = len(position)
    counts = np.zeros(other + 1, dtype="int64")
    for value, n in Counter(values).items():  # counted in C, then placed per distinct value
        counts[position.get(value, other)] += n
    return counts


def build_profile(columns: Mapping[str, Sequence[Any]], bins: int) -> dict[str, Any]:
    """Bucket definitions and expected frequencies of each feature in the training data."""
    features: dict[str, Any] = {}
    for feature in schema.FEATURES:
        values = columns[feature.name]
        if feature.kind == "numeric":
            spec: dict[str, Any] = {
                "kind": "numeric",
                "edges": _numeric_edges(np.asarray(values, dtype="float64"), bins),
            }
        elif feature.kind == "binary":
            spec = {"kind": "categorical", "values": [0, 1]}
        else:
            spec = {"kind": "categorical", "values": list(feature.values)}
        counts = bucket_counts(spec, values)
        spec["expected"] = [round(float(c), 6) for c in counts / counts.sum()]
        features[feature.name] = spec
    return {"features": features, "rows": len(next(iter(columns.values())))}


def psi(expected: Sequence[float], counts: np.ndarray) -> float:
    """Population stability index of observed bucket counts against expected fractions."""
    e = np.maximum(np.asarray(expected, dtype="float64"), _FLOOR)
    a = np.maximum(counts / max(counts.sum(), 1), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_psi(
    profile: Mapping[str, Any], columns: Mapping[str, Sequence[Any]]
) -> dict[str, float]:
    """PSI per feature of a batch of recent customers against the reference profile."""
    return {
        name: psi(spec["expected"], bucket_counts(spec, columns[name]))
        for name, spec in profile["features"].items()
    }
