"""Live metrics of the service: predictions, rejections, latency, fairness groups and drift.

Names are a contract (docs/metrics.md, the Prometheus alerts, the dashboards). Under
BentoML the metrics live in Prometheus' multiprocess mode, so every worker's values reach
/metrics; gauges say how workers combine (`livemax`: the highest of the live workers).
The drift window is recomputed at most once per `refresh_seconds`, off the per-request path.
No single request can dominate what monitoring sees: a request adds at most
`serve.drift_request_share` of the drift window to it (an evenly spaced sample of a larger
request), and the fairness group counts count the same sample.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from itertools import chain, compress
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from churnops import drift, schema

PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BULK_OBSERVE_FROM = 8
MODEL_INFO_LABELS = ("model_sha256", "estimator", "data_hash", "git_commit", "mlflow_run_id")


def observe_all(histogram: Histogram, values: Sequence[float]) -> None:
    """histogram.observe(v) for every v, with one increment per bucket for a batch.

    Each observation is a write to a shared-memory file under BentoML; a batch of 1,000
    customers would otherwise cost 2,000 writes. Uses the pinned prometheus_client's
    bucket layout (`_upper_bounds`, `_buckets`, `_sum`); tests/code checks it agrees
    with observe().
    """
    if len(values) <= BULK_OBSERVE_FROM:
        for value in values:
            histogram.observe(value)
        return
    index = np.searchsorted(histogram._upper_bounds, values, side="left")
    for bucket, count in zip(histogram._buckets, np.bincount(index).tolist(), strict=False):
        if count:
            bucket.inc(count)
    histogram._sum.inc(float(np.sum(values)))


def monitoring_sample(
    columns: Mapping[str, Sequence[Any]], probabilities: Sequence[float], cap: int
) -> tuple[Mapping[str, Sequence[Any]], Sequence[float]]:
    """At most `cap` of a request's customers, evenly spaced (deterministic, no RNG)."""
    if len(probabilities) <= cap:
        return columns, probabilities
    step = -(-len(probabilities) // cap)
    return {name: values[::step] for name, values in columns.items()}, probabilities[::step]


class DriftWindow:
    """The most recent customers (at most `size`), and their PSI against the reference."""

    def __init__(self, profile: Mapping[str, Any], size: int) -> None:
        self.profile = profile
        self.size = size
        self.batches: deque[tuple[int, Mapping[str, Sequence[Any]]]] = deque()
        self.customers = 0

    def add(self, columns: Mapping[str, Sequence[Any]], count: int) -> None:
        self.batches.append((count, columns))
        self.customers += count
        while self.batches and self.customers - self.batches[0][0] >= self.size:
            self.customers -= self.batches.popleft()[0]

    def columns(self) -> dict[str, list[Any]]:
        """The last `size` customers' values per feature."""
        return {
            name: list(chain.from_iterable(batch[name] for _, batch in self.batches))[-self.size :]
            for name in self.profile["features"]
        }

    def psi(self) -> dict[str, float]:
        return drift.feature_psi(self.profile, self.columns())

    def __len__(self) -> int:
        return min(self.customers, self.size)


class ServingMetrics:
    """The churnops_* metrics of one worker, and the drift verdict they expose."""

    def __init__(
        self,
        card: Mapping[str, Any],
        profile: Mapping[str, Any],
        serve: Mapping[str, Any],
        git_commit: str,
        decision_threshold: float,
        refresh_seconds: float = 1.0,
    ) -> None:
        registry = CollectorRegistry(auto_describe=True)
        self.decision_threshold = decision_threshold
        self.min_samples = int(serve["drift_min_samples"])
        self.request_cap = max(1, int(serve["drift_window"] * serve["drift_request_share"]))
        self.psi_threshold = float(serve["psi_threshold"])
        self.refresh_seconds = refresh_seconds
        self.window = DriftWindow(profile, int(serve["drift_window"]))
        self._refreshed_at = 0.0
        self.predictions = Counter(
            "churnops_predictions_total", "Customers scored", registry=registry
        )
        self.churn_probability = Histogram(
            "churnops_churn_probability",
            "Predicted churn probabilities",
            buckets=PROBABILITY_BUCKETS,
            registry=registry,
        )
        self.rejected = Counter(
            "churnops_rejected_requests_total",
            "Requests answered 4xx, by reason",
            ["reason"],
            registry=registry,
        )
        self.internal_errors = Counter(
            "churnops_internal_errors_total", "Requests answered 5xx", registry=registry
        )
        self.duration = Histogram(
            "churnops_request_duration_seconds",
            "Time to answer POST /predict, by HTTP status",
            ["status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        model_info = Gauge(
            "churnops_model_info",
            "The model being served (always 1; its identity is in the labels)",
            MODEL_INFO_LABELS,
            multiprocess_mode="livemax",
            registry=registry,
        )
        identity = {**card, "git_commit": git_commit}
        model_info.labels(*(str(identity.get(k, "unknown")) for k in MODEL_INFO_LABELS)).set(1)
        self.feature_psi = Gauge(
            "churnops_feature_drift_psi",
            "Population stability index of the drift window against the training reference",
            ["feature"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.drift_detected = Gauge(
            "churnops_drift_detected",
            "1 when any feature's PSI is above serve.psi_threshold (needs drift_min_samples)",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.window_customers = Gauge(
            "churnops_drift_window_customers",
            "Customers in the drift window",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.group_predictions = Counter(
            "churnops_group_predictions_total",
            "Customers scored, by sensitive feature and group (of a request, at most its "
            "monitoring sample)",
            ["feature", "group"],
            registry=registry,
        )
        self.group_churn = Counter(
            "churnops_group_churn_predictions_total",
            "Customers predicted to churn (probability >= decision threshold), by group "
            "(of a request, at most its monitoring sample)",
            ["feature", "group"],
            registry=registry,
        )
        # Children resolved once: `.labels(...)` on every request costs more than the increment.
        groups = [(f, g) for f in schema.SENSITIVE_FEATURES for g in (0, 1)]
        self._group_predictions = {
            k: self.group_predictions.labels(k[0], str(k[1])) for k in groups
        }
        self._group_churn = {k: self.group_churn.labels(k[0], str(k[1])) for k in groups}
        self._durations: dict[int, Any] = {}
        self.registry = registry

    def observe_predictions(
        self, columns: Mapping[str, Sequence[Any]], probabilities: Sequence[float]
    ) -> None:
        """Count a scored batch, feed the drift window, and refresh drift when it is due."""
        self.predictions.inc(len(probabilities))
        observe_all(self.churn_probability, probabilities)
        columns, probabilities = monitoring_sample(columns, probabilities, self.request_cap)
        scored = len(probabilities)
        churned = [p >= self.decision_threshold for p in probabilities]
        churners = sum(churned)
        for feature in schema.SENSITIVE_FEATURES:  # binary: groups 0 and 1
            group = columns[feature]
            in_one, churners_in_one = sum(group), sum(compress(churned, group))
            self._count_group(feature, 0, scored - in_one, churners - churners_in_one)
            self._count_group(feature, 1, in_one, churners_in_one)
        self.window.add(columns, scored)
        now = time.monotonic()
        if now - self._refreshed_at >= self.refresh_seconds:
            self._refreshed_at = now
            self.refresh_drift()

    def _count_group(self, feature: str, group: int, scored: int, churners: int) -> None:
        if scored:
            self._group_predictions[feature, group].inc(scored)
            self._group_churn[feature, group].inc(churners)

    def observe_request(self, status: int, seconds: float) -> None:
        """Time one answered POST /predict under its HTTP status."""
        duration = self._durations.get(status)
        if duration is None:
            duration = self._durations[status] = self.duration.labels(str(status))
        duration.observe(seconds)

    def refresh_drift(self) -> dict[str, float]:
        """Recompute every feature's PSI and the drift verdict; the PSI per feature."""
        self.window_customers.set(len(self.window))
        if len(self.window) < self.min_samples:
            return {}
        psi = self.window.psi()
        for feature, value in psi.items():
            self.feature_psi.labels(feature).set(value)
        self.drift_detected.set(int(max(psi.values()) > self.psi_threshold))
        return psi
