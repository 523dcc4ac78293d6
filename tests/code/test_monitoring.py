"""The drift window and the serving metrics, on synthetic customers (no data, no server)."""

from __future__ import annotations

import random

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from churnops import drift, schema
from churnops.serving.metrics import DriftWindow, ServingMetrics, observe_all

SERVE = {"max_batch": 1000, "drift_window": 300, "drift_min_samples": 100, "psi_threshold": 0.2}
CARD = {"model_sha256": "abc", "estimator": "logistic_regression", "decision_threshold": 0.5}


def _customers(count: int, seed: int, charge_scale: float = 1.0) -> dict[str, list]:
    rng = random.Random(seed)
    columns: dict[str, list] = {}
    for feature in schema.FEATURES:
        if feature.is_categorical:
            columns[feature.name] = [rng.choice(feature.values) for _ in range(count)]
        elif feature.kind == "binary":
            columns[feature.name] = [rng.randint(0, 1) for _ in range(count)]
        else:
            columns[feature.name] = [rng.uniform(0, 100) * charge_scale for _ in range(count)]
    return columns


PROFILE = drift.build_profile(_customers(5000, seed=0), bins=10)


def test_window_keeps_the_latest_customers_in_order() -> None:
    window = DriftWindow(PROFILE, size=5)
    for start in range(0, 12, 3):
        batch = _customers(3, seed=start)
        batch["tenure"] = [float(start + i) for i in range(3)]
        window.add(batch, 3)
    assert len(window) == 5
    assert window.columns()["tenure"] == [7.0, 8.0, 9.0, 10.0, 11.0]


def test_window_psi_is_drift_modules_psi_of_the_same_customers() -> None:
    window = DriftWindow(PROFILE, size=200)
    window.add(_customers(250, seed=1), 250)
    assert window.psi() == drift.feature_psi(PROFILE, window.columns())


def _metrics() -> ServingMetrics:
    return ServingMetrics(
        CARD, PROFILE, SERVE, git_commit="c0ffee", decision_threshold=0.5, refresh_seconds=0
    )


def _sample(metrics: ServingMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_no_drift_verdict_before_min_samples_then_flag_only_on_a_shift() -> None:
    metrics = _metrics()
    calm = _customers(50, seed=2)
    metrics.observe_predictions(calm, [0.2] * 50)
    assert _sample(metrics, "churnops_drift_window_customers") == 50
    assert _sample(metrics, "churnops_drift_detected") == 0
    metrics.observe_predictions(_customers(250, seed=3), [0.2] * 250)
    assert _sample(metrics, "churnops_drift_detected") == 0
    metrics.observe_predictions(_customers(300, seed=4, charge_scale=3), [0.2] * 300)
    assert _sample(metrics, "churnops_drift_detected") == 1
    assert _sample(metrics, "churnops_feature_drift_psi", feature="monthly_charges") > 0.2
    assert _sample(metrics, "churnops_feature_drift_psi", feature="contract") < 0.2


def test_counts_predictions_probabilities_and_groups() -> None:
    metrics = _metrics()
    columns = _customers(4, seed=5)
    columns["female"] = [1, 1, 0, 0]
    metrics.observe_predictions(columns, list(np.array([0.9, 0.1, 0.6, 0.4])))
    assert _sample(metrics, "churnops_predictions_total") == 4
    assert _sample(metrics, "churnops_churn_probability_bucket", le="0.5") == 2
    assert _sample(metrics, "churnops_group_predictions_total", feature="female", group="1") == 2
    churned = "churnops_group_churn_predictions_total"
    assert _sample(metrics, churned, feature="female", group="1") == 1
    assert _sample(metrics, churned, feature="female", group="0") == 1
    info = generate_latest(metrics.registry).decode()
    assert 'churnops_model_info{data_hash="unknown",estimator="logistic_regression"' in info
    assert 'git_commit="c0ffee"' in info


def test_bulk_observation_equals_one_observation_per_value() -> None:
    registry_bulk, registry_each = CollectorRegistry(), CollectorRegistry()
    buckets = (0.1, 0.5, 1.0)
    bulk = Histogram("h", "h", buckets=buckets, registry=registry_bulk)
    each = Histogram("h", "h", buckets=buckets, registry=registry_each)
    values = [0.0, 0.1, 0.10001, 0.3, 0.5, 0.7, 1.0, 1.0, 0.05, 0.99, 0.2]
    observe_all(bulk, values)
    for value in values:
        each.observe(value)

    def samples(registry: CollectorRegistry) -> list:
        (family,) = registry.collect()
        return [(s.name, s.labels, s.value) for s in family.samples if s.name != "h_created"]

    assert samples(registry_bulk) == samples(registry_each)
