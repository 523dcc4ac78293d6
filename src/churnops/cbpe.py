"""Confidence-based performance estimation (CBPE): the model's quality without labels.

A customer given a calibrated churn probability p churns with probability p, so over many
customers the confusion matrix at threshold t is expected to be E[TP] = sum of p over
p >= t, E[FP] = sum of 1 - p over p >= t, E[FN] = sum of p over p < t; precision, recall
and F1 follow, and ROC AUC from the expected ROC curve over thresholds (NannyML's CBPE).
The model's probabilities are calibrated with a map fitted on the held-out test split
(`export`). Serving imports this module: numpy only.

Everything works on counts per probability bin (a grid of `BINS` equal bins with the
decision threshold on an edge): the service's workers share such counts
(serving/metrics.py), and evaluate-champion bins a labeled snapshot the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from churnops import drift

PREDICTION = "churn_probability"  # its section in the reference profile
BINS = 50  # width 0.02: fine enough that ties within a bin cost ROC AUC about 0.001
PSI_BINS = 10  # prediction drift on deciles: 50 bins would make PSI noisy on 500 customers
METRICS = ("roc_auc", "precision", "recall", "f1")


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(float(v), 6) for v in values]


def reference(
    probability: np.ndarray, calibration: Callable[[np.ndarray], np.ndarray], threshold: float
) -> dict[str, Any]:
    """The profile of the model's probabilities on held-out customers: the bin grid, each
    bin's calibrated churn probability (the calibration map at its midpoint), their
    distribution, and the deciles (snapped to the grid) prediction drift is measured on."""
    edges = sorted({round(i / BINS, 6) for i in range(1, BINS)} | {threshold})
    bounds = np.array([0.0, *edges, 1.0])
    deciles = np.quantile(probability, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
    spec: dict[str, Any] = {"kind": "numeric", "edges": edges, "threshold": threshold}
    counts = drift.bucket_counts(spec, probability)  # the last bucket (missing) stays 0
    return spec | {
        "expected": _rounded(counts / counts.sum()),
        "calibrated": _rounded(calibration((bounds[:-1] + bounds[1:]) / 2)),
        "psi_edges": sorted({edges[int(np.abs(bounds[1:-1] - q).argmin())] for q in deciles}),
    }


def bin_counts(profile: Mapping[str, Any], probability: Sequence[float]) -> np.ndarray:
    """Customers per probability bin of the profile's grid."""
    return drift.bucket_counts(profile, probability)[: len(profile["calibrated"])]


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0  # as sklearn's zero_division=0


def estimate(profile: Mapping[str, Any], counts: np.ndarray) -> dict[str, float]:
    """Estimated ROC AUC, precision, recall and F1 of customers given as counts per bin."""
    counts = np.asarray(counts, dtype="float64")[: len(profile["calibrated"])]
    churners = counts * np.asarray(profile["calibrated"])  # expected, per bin
    stayers = counts - churners
    first = profile["edges"].index(profile["threshold"]) + 1  # first bin predicted to churn
    tp, fp, fn = churners[first:].sum(), stayers[first:].sum(), churners[:first].sum()
    # The expected ROC curve: thresholds from the top bin down; ties in a bin count half.
    tpr = np.cumsum(np.r_[0.0, churners[::-1]]) / churners.sum()
    fpr = np.cumsum(np.r_[0.0, stayers[::-1]]) / stayers.sum()
    values = {
        "roc_auc": np.trapezoid(tpr, fpr),
        "precision": _share(tp, tp + fp),
        "recall": _share(tp, tp + fn),
        "f1": _share(2 * tp, 2 * tp + fp + fn),
    }
    return {name: round(float(value), 6) for name, value in values.items()}


def prediction_psi(profile: Mapping[str, Any], counts: np.ndarray) -> float:
    """PSI of binned probabilities against the held-out distribution, on its deciles."""
    lower = np.array([0.0, *profile["edges"]])  # each bin's lower bound: its decile
    decile = np.searchsorted(profile["psi_edges"], lower, side="right")

    def by_decile(values: Sequence[float]) -> np.ndarray:
        return np.bincount(decile, weights=np.asarray(values, dtype="float64")[: len(lower)])

    return drift.psi(by_decile(profile["expected"]), by_decile(counts))
