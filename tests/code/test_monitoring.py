"""The drift window and the serving metrics, on synthetic customers (no data, no server)."""

from __future__ import annotations

import gc
import random
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values

from churnops import cbpe, drift, schema
from churnops.serving.metrics import (
    DriftWindow,
    ServingMetrics,
    monitoring_sample,
    observe_all,
    read_bucket_totals,
)

SERVE = {
    "max_batch": 1000,
    "drift_window": 300,
    "drift_request_share": 0.1,
    "drift_min_samples": 100,
    "psi_threshold": 0.2,
}
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
    # What the model would say: uniform churn probabilities, shifted up by a price rise.
    columns[cbpe.PREDICTION] = [min(rng.random() * charge_scale, 1.0) for _ in range(count)]
    return columns


PROFILE = drift.build_profile(_customers(5000, seed=0), bins=10)
PROFILE[cbpe.PREDICTION] = cbpe.reference(
    np.array(_customers(5000, seed=0)[cbpe.PREDICTION]), lambda p: p, 0.5
)


def _window(size: int) -> DriftWindow:
    registry = CollectorRegistry()
    buckets = Counter(
        "churnops_drift_bucket_customers", "", ["feature", "bucket"], registry=registry
    )
    return DriftWindow(PROFILE, size, buckets, lambda: read_bucket_totals(registry))


def _counts(window: DriftWindow, columns: dict[str, list]) -> np.ndarray:
    return np.concatenate([drift.bucket_counts(s, columns[n]) for n, s in window.specs.items()])


def test_window_holds_the_last_size_customers_to_the_refresh() -> None:
    window = _window(size=5)
    batches = [_customers(3, seed=start) for start in range(4)]
    for batch in batches:
        window.add(batch)
        counts = window.refresh()
    # The newest refreshes that cover 5 customers: the last two batches of 3.
    last_two = {n: batches[2][n] + batches[3][n] for n in batches[0]}
    assert window.customers(counts) == 6
    assert counts.tolist() == _counts(window, last_two).tolist()
    assert len(window.history) == 3


def test_flushed_customers_count_at_the_next_refresh_not_twice() -> None:
    window = _window(size=100)
    first, second = _customers(4, seed=5), _customers(3, seed=6)
    window.add(first)
    window.flush()  # counted into the totals between refreshes ...
    window.add(second)
    counts = window.refresh()  # ... and in the window once, with what came after
    both = {n: first[n] + second[n] for n in first}
    assert counts.tolist() == _counts(window, both).tolist()
    window.flush()  # nothing pending: nothing added
    assert window.refresh().tolist() == counts.tolist()


def test_pending_customers_leave_the_garbage_collector_nothing_to_scan() -> None:
    window = _window(size=100)
    window.add(_customers(3, seed=7))  # a request's columns: a dict of tracked lists
    gc.collect(0)  # the young generation's pass: what waits for the flush is untracked
    assert not any(gc.is_tracked(waiting) for waiting in window._pending)
    assert window.customers(window.refresh()) == 3


def test_totals_in_multiprocess_mode_are_every_workers_counters(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    totals = {}
    for pid in (101, 102):  # two workers' files, as BentoML's workers write them
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda p=pid: p))
        registry = CollectorRegistry()
        buckets = Counter(
            "churnops_drift_bucket_customers", "", ["feature", "bucket"], registry=registry
        )
        buckets.labels("tenure", "0").inc(pid - 100)
        Histogram("other_seconds", "", registry=registry).observe(0.1)  # not read
        totals = read_bucket_totals(registry)
    assert totals == {("tenure", "0"): 3.0}


def test_window_psi_is_drift_modules_psi_of_the_same_customers() -> None:
    window = _window(size=200)
    customers = _customers(250, seed=1)
    window.add(customers)
    assert window.psi(window.refresh()) == drift.feature_psi(PROFILE, customers)


def _metrics() -> ServingMetrics:
    return ServingMetrics(CARD, PROFILE, SERVE, git_commit="c0ffee", decision_threshold=0.5)


def _sample(metrics: ServingMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _send(metrics: ServingMetrics, columns: dict[str, list], batch: int = 30) -> None:
    """Customers in requests of `batch` (30: the most one request adds to the window)."""
    count = len(columns["tenure"])
    for start in range(0, count, batch):
        part = {name: values[start : start + batch] for name, values in columns.items()}
        metrics.observe_predictions(part, part[cbpe.PREDICTION])
    metrics.refresh_drift()


def test_no_drift_verdict_before_min_samples_then_flag_only_on_a_shift() -> None:
    metrics = _metrics()
    _send(metrics, _customers(60, seed=2))
    assert _sample(metrics, "churnops_drift_window_customers") == 60
    assert _sample(metrics, "churnops_drift_detected") == 0
    _send(metrics, _customers(240, seed=3))
    assert _sample(metrics, "churnops_drift_detected") == 0
    _send(metrics, _customers(300, seed=4, charge_scale=3))
    assert _sample(metrics, "churnops_drift_detected") == 1
    assert _sample(metrics, "churnops_feature_drift_psi", feature="monthly_charges") > 0.2
    assert _sample(metrics, "churnops_feature_drift_psi", feature="contract") < 0.2


def test_estimate_and_prediction_drift_are_cbpe_of_the_window_once_it_is_full() -> None:
    metrics = _metrics()
    _send(metrics, _customers(60, seed=10))
    estimated = "churnops_estimated_performance"
    assert metrics.registry.get_sample_value(estimated, {"metric": "roc_auc"}) is None  # not 0
    calm = _customers(300, seed=11)
    _send(metrics, calm)  # the window is these 300 (drift_window)
    reference = PROFILE[cbpe.PREDICTION]
    counts = cbpe.bin_counts(reference, calm[cbpe.PREDICTION])
    for name, value in cbpe.estimate(reference, counts).items():
        assert _sample(metrics, estimated, metric=name) == pytest.approx(value, abs=1e-12), name
    psi = _sample(metrics, "churnops_prediction_drift_psi")
    assert psi == pytest.approx(cbpe.prediction_psi(reference, counts), abs=1e-12)
    assert psi < 0.1
    _send(metrics, _customers(300, seed=12, charge_scale=3))  # predictions shifted up
    assert _sample(metrics, "churnops_prediction_drift_psi") > 0.2


def test_the_probability_buckets_and_the_estimate_have_bounded_labels() -> None:
    metrics = _metrics()
    _send(metrics, _customers(3000, seed=13))  # 3,000 different probabilities
    families = {family.name: family.samples for family in metrics.registry.collect()}
    buckets = {
        s.labels["bucket"]
        for s in families["churnops_drift_bucket_customers"]
        if s.labels["feature"] == cbpe.PREDICTION and s.name.endswith("_total")
    }
    assert len(buckets) == cbpe.BINS + 1  # the grid's bins and the (empty) missing bucket
    metrics_named = {s.labels["metric"] for s in families["churnops_estimated_performance"]}
    assert metrics_named == set(cbpe.METRICS)


def _identical(count: int) -> dict[str, list]:
    one = _customers(1, seed=9, charge_scale=5)
    return {name: values * count for name, values in one.items()}


def test_one_maximal_request_cannot_raise_drift_on_calm_traffic() -> None:
    metrics = _metrics()
    _send(metrics, _customers(300, seed=6))
    assert _sample(metrics, "churnops_drift_detected") == 0
    metrics.observe_predictions(_identical(1000), [0.9] * 1000)  # max_batch of one customer
    metrics.refresh_drift()
    assert _sample(metrics, "churnops_drift_detected") == 0
    assert _sample(metrics, "churnops_predictions_total") == 1300  # all of them are counted
    scored = _sample(metrics, "churnops_group_predictions_total", feature="female", group="0")
    scored += _sample(metrics, "churnops_group_predictions_total", feature="female", group="1")
    assert scored == 300 + 30  # the fairness counts took the request's sample only


def test_one_maximal_request_cannot_hide_real_drift() -> None:
    metrics = _metrics()
    _send(metrics, _customers(300, seed=7, charge_scale=3))
    assert _sample(metrics, "churnops_drift_detected") == 1
    metrics.observe_predictions(_customers(1000, seed=8), [0.2] * 1000)
    metrics.refresh_drift()
    assert _sample(metrics, "churnops_drift_detected") == 1


def test_the_sample_of_a_large_request_is_evenly_spaced_and_capped() -> None:
    columns = {"tenure": list(range(1000))}
    sampled, probabilities = monitoring_sample(columns, [0.5] * 1000, cap=30)
    assert len(probabilities) == len(sampled["tenure"]) <= 30
    assert sampled["tenure"][:3] == [0, 34, 68]  # every ceil(1000 / 30)th
    assert monitoring_sample(columns, [0.5] * 1000, cap=1000)[0] is columns


def test_counts_predictions_probabilities_and_groups() -> None:
    metrics = _metrics()
    columns = _customers(4, seed=5)
    columns["female"] = [1, 1, 0, 0]
    metrics.observe_predictions(columns, list(np.array([0.9, 0.1, 0.6, 0.4])))
    metrics.observe_request(200, 0.002)
    assert _sample(metrics, "churnops_predictions_total") == 0  # written at the next flush
    metrics.flush()
    assert _sample(metrics, "churnops_predictions_total") == 4
    assert _sample(metrics, "churnops_request_duration_seconds_count", status="200") == 1
    assert (
        _sample(metrics, "churnops_request_duration_seconds_bucket", status="200", le="0.001") == 0
    )
    assert _sample(metrics, "churnops_churn_probability_bucket", le="0.5") == 2
    assert _sample(metrics, "churnops_group_predictions_total", feature="female", group="1") == 2
    churned = "churnops_group_churn_predictions_total"
    assert _sample(metrics, churned, feature="female", group="1") == 1
    assert _sample(metrics, churned, feature="female", group="0") == 1
    info = generate_latest(metrics.registry).decode()
    assert 'churnops_model_info{data_hash="unknown",estimator="logistic_regression"' in info
    assert 'git_commit="c0ffee"' in info


def test_the_metrics_thread_outlives_a_failed_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = _metrics()
    flushes: list[int] = []
    window_flush = metrics.window.flush

    def failing_once() -> None:
        flushes.append(1)
        if len(flushes) == 1:
            raise OSError("No space left on device")
        window_flush()

    monkeypatch.setattr(metrics.window, "flush", failing_once)
    metrics.start()
    deadline = time.monotonic() + 5
    while not flushes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert flushes, "the metrics thread never flushed"
    metrics.observe_predictions(_customers(3, seed=9), [0.5, 0.5, 0.5])
    while _sample(metrics, "churnops_predictions_total") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _sample(metrics, "churnops_predictions_total") == 3  # written after the failure


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
