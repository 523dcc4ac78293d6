"""Champion versus challenger on the same labeled rows: the difference (challenger minus
champion) of each metric the gate's no-regression rules compare, with a paired bootstrap
interval, so the tolerance a verdict allows grows as the holdout shrinks.

The metrics mean what churnops.quality's do (tests keep them equal); here they count each
row as often as its weight says, so a bootstrap resample is a vector of counts and both
models are scored on exactly the same resampled rows. Resampling keeps the number of
churned and staying customers (stratified on the label) and is seeded: the same inputs
give the same interval, byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from churnops.quality import rounded

METRICS = (
    "roc_auc",
    "pr_auc",
    "f1",
    "demographic_parity_difference",
    "equal_opportunity_difference",
)


def _ranking(y: np.ndarray, probability: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """ROC AUC and average precision; tied probabilities share one threshold (as sklearn)."""
    order = np.argsort(-probability, kind="stable")
    score, positive, weight = probability[order], y[order], weights[order]
    last_of_tie = np.append(score[1:] != score[:-1], True)
    tp = np.cumsum(weight * positive)[last_of_tie]
    fp = np.cumsum(weight * (1 - positive))[last_of_tie]
    tpr, fpr = np.append(0.0, tp / tp[-1]), np.append(0.0, fp / fp[-1])
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    return float(np.trapezoid(tpr, fpr)), float(np.sum(np.diff(tpr) * precision))


def _largest_gap(selected: np.ndarray, among: np.ndarray, group: np.ndarray) -> float:
    """Across the feature's groups, the largest difference in the weighted share of `among`
    that is selected (fairlearn's `between_groups` difference); empty groups sit out."""
    rates = []
    for value in np.unique(group):
        members = among * (group == value)
        if members.sum() > 0:
            rates.append(members @ selected / members.sum())
    return float(max(rates) - min(rates))


def gated_metrics(
    y: np.ndarray,
    probability: np.ndarray,
    threshold: float,
    groups: Mapping[str, np.ndarray],
    weights: np.ndarray,
) -> dict[str, float]:
    """METRICS of one model, each row counted `weights` times; fairness is the worst
    sensitive feature's gap, as in churnops.quality.fairness."""
    predicted = (probability >= threshold).astype(float)
    roc_auc, pr_auc = _ranking(y, probability, weights)
    tp, fp = weights @ (predicted * y), weights @ (predicted * (1 - y))
    fn = weights @ ((1 - predicted) * y)
    return {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "f1": float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0,
        "demographic_parity_difference": max(
            _largest_gap(predicted, weights, g) for g in groups.values()
        ),
        "equal_opportunity_difference": max(
            _largest_gap(predicted, weights * y, g) for g in groups.values()
        ),
    }


def paired_bootstrap(
    y: np.ndarray,
    groups: Mapping[str, np.ndarray],
    champion: tuple[np.ndarray, float],
    challenger: tuple[np.ndarray, float],
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, dict[str, float | list[float]]]:
    """Per metric: both models' values on all rows, the difference challenger minus
    champion, and its central `confidence` interval over `resamples` paired resamples.

    `champion` and `challenger` are (churn probability per row, decision threshold)."""
    y = np.asarray(y, dtype=float)
    positives, negatives = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if not len(positives) or not len(negatives):
        raise ValueError("the rows must include churned and staying customers to compare models")
    rng = np.random.default_rng(seed)
    differences = np.empty((resamples, len(METRICS)))
    for i in range(resamples):
        picked = np.concatenate(
            [
                positives[rng.integers(len(positives), size=len(positives))],
                negatives[rng.integers(len(negatives), size=len(negatives))],
            ]
        )
        weights = np.bincount(picked, minlength=len(y)).astype(float)
        before = gated_metrics(y, *champion, groups, weights)
        after = gated_metrics(y, *challenger, groups, weights)
        differences[i] = [after[name] - before[name] for name in METRICS]
    low, high = np.quantile(differences, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    ones = np.ones(len(y))
    before, after = (gated_metrics(y, *model, groups, ones) for model in (champion, challenger))
    return {
        name: {
            "champion": rounded(before[name]),
            "challenger": rounded(after[name]),
            "difference": rounded(after[name] - before[name]),
            "interval": [rounded(low[i]), rounded(high[i])],
        }
        for i, name in enumerate(METRICS)
    }
