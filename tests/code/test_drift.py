"""Reference profile and population stability index."""

from __future__ import annotations

import numpy as np

from churnops import drift, schema
from tests.support.frames import synthetic_snapshot


def _columns(df) -> dict[str, list]:
    return {name: df[name].tolist() for name in schema.FEATURE_NAMES}


def test_profile_covers_every_feature_with_fractions_summing_to_one() -> None:
    profile = drift.build_profile(_columns(synthetic_snapshot(2000)), bins=10)
    assert set(profile["features"]) == set(schema.FEATURE_NAMES)
    for spec in profile["features"].values():
        assert abs(sum(spec["expected"]) - 1) < 1e-5


def test_same_distribution_is_stable_and_a_shift_is_not() -> None:
    reference = synthetic_snapshot(5000, seed=1)
    profile = drift.build_profile(_columns(reference), bins=10)
    fresh = synthetic_snapshot(1000, seed=2)
    stable = drift.feature_psi(profile, _columns(fresh))
    assert max(stable.values()) < 0.1
    fresh["monthly_charges"] = fresh["monthly_charges"] * 1.5
    fresh["contract"] = "Month-to-month"
    shifted = drift.feature_psi(profile, _columns(fresh))
    assert shifted["monthly_charges"] > 0.2
    assert shifted["contract"] > 0.2
    assert shifted["tenure"] == stable["tenure"]


def test_missing_and_unknown_values_have_their_own_bucket() -> None:
    numeric = {"kind": "numeric", "edges": [10.0, 20.0]}
    counts = drift.bucket_counts(numeric, [5.0, 10.0, 25.0, None, float("nan")])
    assert counts.tolist() == [1, 1, 1, 2]
    categorical = {"kind": "categorical", "values": ["a", "b"]}
    assert drift.bucket_counts(categorical, ["a", "c", "a"]).tolist() == [2, 0, 1]


def test_psi_of_identical_counts_is_zero() -> None:
    assert drift.psi([0.25, 0.75], np.array([25, 75])) == 0.0
