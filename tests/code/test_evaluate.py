"""Quality metrics and the over/underfitting diagnosis."""

from __future__ import annotations

import numpy as np
import pytest

from churnops import evaluate


@pytest.mark.parametrize(
    ("train_auc", "test_auc", "diagnosis"),
    [(0.86, 0.85, "good fit"), (0.99, 0.80, "overfitting"), (0.62, 0.60, "underfitting")],
)
def test_diagnosis(train_auc: float, test_auc: float, diagnosis: str) -> None:
    result = evaluate.diagnose(train_auc, test_auc, overfit_gap=0.05, underfit_floor=0.75)
    assert result["diagnosis"] == diagnosis
    assert result["overfit_gap"] == pytest.approx(train_auc - test_auc)


def test_quality_uses_the_decision_threshold() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.9])
    at_half = evaluate.quality(y, p, threshold=0.5)
    at_third = evaluate.quality(y, p, threshold=0.3)
    assert at_half["roc_auc"] == at_third["roc_auc"] == 0.75
    assert (at_half["recall"], at_half["precision"]) == (0.5, 1.0)
    assert (at_third["recall"], at_third["precision"]) == (1.0, pytest.approx(2 / 3, abs=1e-6))


def test_plot_rows_have_dvc_plot_fields() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.2, 0.8, 0.3, 0.6, 0.4, 0.1])
    plots = evaluate.plot_data(y, p, threshold=0.5)
    assert {"fpr", "tpr"} <= plots["roc"][0].keys()
    assert len(plots["confusion"]) == len(y)
    assert {r["actual"] for r in plots["confusion"]} == {"No", "Yes"}


def test_diagnostics_sample_is_seeded_bounded_and_in_row_order() -> None:
    assert evaluate.at_most(5, limit=10, seed=1).tolist() == [0, 1, 2, 3, 4]
    sample = evaluate.at_most(1_000, limit=100, seed=1)
    assert len(sample) == len(set(sample)) == 100
    assert np.all(np.diff(sample) > 0) and sample.max() < 1_000
    assert np.array_equal(sample, evaluate.at_most(1_000, limit=100, seed=1))
    assert not np.array_equal(sample, evaluate.at_most(1_000, limit=100, seed=2))
