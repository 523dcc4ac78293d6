"""Champion versus challenger on the same rows: the metrics and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops import schema
from churnops.comparison import METRICS, gated_metrics, paired_bootstrap
from churnops.quality import fairness, quality


def scored_rows(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Customers with sensitive features, labels and a model's probabilities (with ties)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "female": rng.integers(0, 2, rows),
            "senior_citizen": (rng.random(rows) < 0.2).astype(int),
        }
    )
    score = rng.normal(size=rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(1 - 2 * score))).astype(int)
    probability = np.round(1 / (1 + np.exp(1 - 2 * score)), 2)  # rounded: many ties
    return frame, y, probability


def groups_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {feature: frame[feature].to_numpy() for feature in schema.SENSITIVE_FEATURES}


def reference(frame: pd.DataFrame, y: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """What churnops.quality says (sklearn, fairlearn): the definitions to agree with."""
    predicted = (probability >= 0.5).astype(int)
    return quality(y, probability, 0.5) | fairness(frame, y, predicted)


def test_the_metrics_are_churnops_quality_s_on_all_rows_and_on_repeated_rows() -> None:
    frame, y, probability = scored_rows(600)
    mine = gated_metrics(y, probability, 0.5, groups_of(frame), np.ones(len(y)))
    expected = reference(frame, y, probability)
    assert {n: round(v, 6) for n, v in mine.items()} == {n: expected[n] for n in METRICS}

    # A row counted twice is a row repeated: what a bootstrap resample is.
    picked = np.random.default_rng(1).integers(len(y), size=len(y))
    weights = np.bincount(picked, minlength=len(y)).astype(float)
    mine = gated_metrics(y, probability, 0.5, groups_of(frame), weights)
    expected = reference(frame.iloc[picked], y[picked], probability[picked])
    assert {n: round(v, 6) for n, v in mine.items()} == {n: expected[n] for n in METRICS}


def test_a_challenger_equal_to_the_champion_differs_by_exactly_nothing() -> None:
    frame, y, probability = scored_rows(300)
    model = (probability, 0.5)
    compared = paired_bootstrap(y, groups_of(frame), model, model, 200, 0.95, 42)
    assert set(compared) == set(METRICS)
    for entry in compared.values():
        assert entry["champion"] == entry["challenger"]
        assert entry["difference"] == 0 and entry["interval"] == [0, 0]


def test_the_interval_is_seeded_and_narrows_as_the_rows_grow() -> None:
    frame, y, probability = scored_rows(2000)
    worse = np.clip(probability + np.random.default_rng(3).normal(0, 0.2, len(y)), 0, 1)

    def compare(rows: int, seed: int) -> dict:
        groups = {name: values[:rows] for name, values in groups_of(frame).items()}
        return paired_bootstrap(
            y[:rows], groups, (probability[:rows], 0.5), (worse[:rows], 0.5), 300, 0.95, seed
        )

    assert compare(2000, 42) == compare(2000, 42)
    assert compare(2000, 42) != compare(2000, 43)
    low, high = compare(2000, 42)["roc_auc"]["interval"]
    tiny_low, tiny_high = compare(60, 42)["roc_auc"]["interval"]
    assert low <= compare(2000, 42)["roc_auc"]["difference"] <= high < 0
    assert tiny_high - tiny_low > 3 * (high - low)


def test_rows_of_one_class_cannot_be_compared() -> None:
    frame, _, probability = scored_rows(50)
    model = (probability, 0.5)
    with pytest.raises(ValueError, match="churned and staying"):
        paired_bootstrap(np.zeros(50), groups_of(frame), model, model, 10, 0.95, 42)
