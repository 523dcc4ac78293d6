"""Model quality and fairness on labeled customers: the numbers the gate and CT compare.

The evaluate stage reports them on the test split, champion evaluation on the newest
labels; both call these functions, so the numbers mean the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import demographic_parity_difference, equal_opportunity_difference
from sklearn import metrics as skm

from churnops import schema


def rounded(value: float) -> float:
    """Six decimals: the precision every reported metric is written with."""
    return round(float(value), 6)


def quality(y_true: np.ndarray, probability: np.ndarray, threshold: float) -> dict[str, float]:
    """Ranking, classification (at the decision threshold) and calibration metrics."""
    predicted = (probability >= threshold).astype(int)
    return {
        "roc_auc": rounded(skm.roc_auc_score(y_true, probability)),
        "pr_auc": rounded(skm.average_precision_score(y_true, probability)),
        "f1": rounded(skm.f1_score(y_true, predicted, zero_division=0)),
        "precision": rounded(skm.precision_score(y_true, predicted, zero_division=0)),
        "recall": rounded(skm.recall_score(y_true, predicted, zero_division=0)),
        "accuracy": rounded(skm.accuracy_score(y_true, predicted)),
        "log_loss": rounded(skm.log_loss(y_true, probability, labels=[0, 1])),
        "brier": rounded(skm.brier_score_loss(y_true, probability)),
    }


def fairness(test: pd.DataFrame, y_true: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Demographic parity and equal opportunity differences per sensitive feature."""
    groups: dict[str, Any] = {}
    for feature in schema.SENSITIVE_FEATURES:
        sensitive = test[feature].to_numpy()
        groups[feature] = {
            "demographic_parity_difference": rounded(
                demographic_parity_difference(y_true, predicted, sensitive_features=sensitive)
            ),
            "equal_opportunity_difference": rounded(
                equal_opportunity_difference(y_true, predicted, sensitive_features=sensitive)
            ),
        }
    worst = {
        name: max(g[name] for g in groups.values())
        for name in ("demographic_parity_difference", "equal_opportunity_difference")
    }
    return {**worst, "by_feature": groups}
