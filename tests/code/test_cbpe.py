"""Performance estimation without labels (churnops.cbpe) and its calibration map (export).

Synthetic customers whose churn is drawn from known probabilities: where the probabilities
are calibrated, the estimate from the probabilities alone must come within TOLERANCE of
the value the drawn labels give.
"""

from __future__ import annotations

import numpy as np
import pytest

from churnops import cbpe
from churnops.export import calibration_map
from churnops.quality import quality

CUSTOMERS = 20_000
# Sampling noise of the realised values at 20,000 customers is about 0.005 (one standard
# deviation); the bin grid costs ROC AUC about 0.001.
TOLERANCE = 0.02


def _identity(probability: np.ndarray) -> np.ndarray:
    return probability


def _customers(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True churn probabilities (skewed low, as churn is) and labels drawn from them."""
    rng = np.random.default_rng(seed)
    probability = rng.beta(1.2, 3.0, CUSTOMERS)
    return probability, (rng.random(CUSTOMERS) < probability).astype(int)


def _errors(reference: dict, probability: np.ndarray, churned: np.ndarray) -> dict[str, float]:
    estimated = cbpe.estimate(reference, cbpe.bin_counts(reference, probability))
    realised = quality(churned, probability, reference["threshold"])
    return {name: realised[name] - estimated[name] for name in cbpe.METRICS}


@pytest.mark.parametrize("threshold", [0.5, 0.37])
def test_calibrated_probabilities_give_the_realised_quality_without_labels(
    threshold: float,
) -> None:
    probability, churned = _customers(seed=1)
    reference = cbpe.reference(probability, _identity, threshold)
    assert threshold in reference["edges"]  # the decision is a bin edge, on or off the grid
    errors = _errors(reference, probability, churned)
    assert set(errors) == set(cbpe.METRICS)
    assert all(abs(e) < TOLERANCE for e in errors.values()), errors


def test_the_calibration_map_corrects_an_overconfident_model() -> None:
    probability, churned = _customers(seed=2)
    raw = np.sqrt(probability)  # the model says more churn than there is
    held_out, live = slice(0, CUSTOMERS // 2), slice(CUSTOMERS // 2, None)
    calibration = calibration_map(raw[held_out], churned[held_out])
    calibrated = cbpe.reference(raw[held_out], calibration, 0.5)
    uncalibrated = cbpe.reference(raw[held_out], _identity, 0.5)
    # Each bin's calibrated probability is the true one at its midpoint (squared back).
    midpoints = (np.r_[0.0, calibrated["edges"]] + np.r_[calibrated["edges"], 1.0]) / 2
    assert np.abs(np.array(calibrated["calibrated"]) - midpoints**2)[5:-5].max() < 0.1

    with_map = _errors(calibrated, raw[live], churned[live])
    without = _errors(uncalibrated, raw[live], churned[live])
    assert all(abs(e) < TOLERANCE for e in with_map.values()), with_map
    assert without["precision"] < -0.1  # trusting the raw probabilities overestimates


def test_bin_counts_follow_the_decision_rule_at_the_threshold() -> None:
    reference = cbpe.reference(np.linspace(0, 1, 101), _identity, 0.5)
    counts = cbpe.bin_counts(reference, [0.0, 0.4999, 0.5, 1.0])
    first = reference["edges"].index(0.5) + 1
    assert len(counts) == cbpe.BINS == len(reference["calibrated"])
    assert counts[:first].sum() == 2  # below the threshold: predicted to stay
    assert counts[first:].sum() == 2  # at or above it: predicted to churn (p >= threshold)


def test_prediction_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    probability, _ = _customers(seed=3)
    reference = cbpe.reference(probability, _identity, 0.5)
    assert len(reference["psi_edges"]) <= cbpe.PSI_BINS - 1
    same, _ = _customers(seed=4)
    window = cbpe.bin_counts(reference, same[:500])
    shifted = cbpe.bin_counts(reference, np.minimum(same[:500] * 1.6, 1.0))
    assert cbpe.prediction_psi(reference, window) < 0.1
    assert cbpe.prediction_psi(reference, shifted) > 0.2
