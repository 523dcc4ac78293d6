"""Live metrics of the service: predictions, rejections, latency, fairness groups and drift.

Names are a contract (docs/metrics.md, the Prometheus alerts, the dashboards). Under
BentoML the metrics live in Prometheus' multiprocess mode, so every worker's values reach
/metrics; gauges say how workers combine (`livemax`: the highest of the live workers). The
drift window holds all workers' customers (DriftWindow): their features and their churn
probabilities, from which the thread each worker runs (`ServingMetrics.start`) recomputes,
every `refresh_seconds`, the PSI per feature, the prediction drift and the estimated
performance (churnops.cbpe: no labels needed). The request path only appends what it
observed; the same thread writes it to the metrics every FLUSH_SECONDS (each write is one
to a shared-memory file under BentoML), so /metrics trails the answers by that much.
No single request can dominate what monitoring sees: a request adds at most
`serve.drift_request_share` of the drift window to it (an evenly spaced sample of a larger
request), and the fairness group counts count the same sample.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, compress
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from churnops import cbpe, drift, schema

logger = logging.getLogger("churnops.serving")

PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BULK_OBSERVE_FROM = 8
FLUSH_SECONDS = 0.05
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


BUCKETS_METRIC = "churnops_drift_bucket_customers"


def bucket_labels(specs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(feature, bucket) of every drift bucket, in the order of the specs."""
    return [
        (name, str(bucket))
        for name, spec in specs.items()
        for bucket in range(len(drift.bucket_counts(spec, [])))
    ]


def read_bucket_totals(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """Every worker's drift bucket counts: the multiprocess files under BentoML, else ours."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    # Counters only: the histogram files (BentoML's among them) are most of the bytes.
    families = (
        MultiProcessCollector.merge(glob.glob(os.path.join(directory, "counter_*.db")))
        if directory
        else registry.collect()
    )
    return {
        (sample.labels["feature"], sample.labels["bucket"]): sample.value
        for family in families
        if family.name == BUCKETS_METRIC
        for sample in family.samples
        if sample.name.endswith("_total")
    }


class DriftWindow:
    """The most recent customers of all workers, as drift bucket counts, and their PSI.

    The buckets are the profile's, of each feature and of the churn probability (the
    `churn_probability` pseudo-feature: cbpe's bin grid). Each worker adds its customers'
    bucket counts to `churnops_drift_bucket_customers_total`
    (in Prometheus' multiprocess files under BentoML, so the totals sum every worker); each
    refresh reads the totals into a history, and the window is the newest totals minus the
    newest earlier ones at least `size` customers back: the last `size` customers of all
    traffic, or a little more (up to one refresh interval's worth).
    """

    def __init__(
        self,
        profile: Mapping[str, Any],
        size: int,
        buckets: Counter,
        read_totals: Callable[[], Mapping[tuple[str, str], float]],
    ) -> None:
        self.profile = profile
        self.size = size
        self.specs = {**profile["features"], cbpe.PREDICTION: profile[cbpe.PREDICTION]}
        self.labels = bucket_labels(self.specs)
        self._children = [buckets.labels(*label) for label in self.labels]
        self._read_totals = read_totals
        # One flat tuple per request, customer by customer (append, popleft: atomic). Of
        # atomic values only, the collector untracks it at its first pass; a request's dict
        # of lists stayed tracked until the flush, and full collections (2-4 ms stalls) ran
        # four times a second.
        self._pending: deque[tuple[Any, ...]] = deque()
        first = next(iter(profile["features"]))
        self._customers = np.array([f == first for f, _ in self.labels])  # one bucket each
        self.history: deque[np.ndarray] = deque([self._totals()])  # what came before us

    def add(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Customers this worker scored (their values per feature and their churn probability),
        counted at the next flush."""
        rows = zip(*(columns[name] for name in self.specs), strict=True)
        self._pending.append(tuple(chain.from_iterable(rows)))

    def flush(self) -> None:
        """Count the pending customers into this worker's share of the totals."""
        pending = [self._pending.popleft() for _ in range(len(self._pending))]
        if not pending:
            return
        values = list(chain.from_iterable(pending))  # customer by customer, feature by feature
        width = len(self.specs)
        counts = np.concatenate(
            [
                drift.bucket_counts(spec, values[i::width])
                for i, spec in enumerate(self.specs.values())
            ]
        )
        for child, count in zip(self._children, counts.tolist(), strict=True):
            if count:
                child.inc(count)

    def _totals(self) -> np.ndarray:
        totals = self._read_totals()
        return np.array([totals.get(label, 0.0) for label in self.labels])

    def refresh(self) -> np.ndarray:
        """Count what is pending, read every worker's totals; the window's bucket counts."""
        self.flush()
        latest = self._totals()
        self.history.append(latest)
        customers = latest @ self._customers
        while len(self.history) > 1 and customers - self.history[1] @ self._customers >= self.size:
            self.history.popleft()
        return latest - self.history[0]

    def customers(self, counts: np.ndarray) -> int:
        return int(counts @ self._customers)

    def of(self, counts: np.ndarray, name: str) -> np.ndarray:
        """The window's bucket counts of one feature (or of the churn probability)."""
        return counts[[feature == name for feature, _ in self.labels]]

    def psi(self, counts: np.ndarray) -> dict[str, float]:
        """PSI per feature of a window's bucket counts against the reference profile."""
        return {
            name: drift.psi(spec["expected"], self.of(counts, name))
            for name, spec in self.profile["features"].items()
        }


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
        # Every worker computes these from the same totals: the latest computation wins.
        self.feature_psi = Gauge(
            "churnops_feature_drift_psi",
            "Population stability index of the drift window against the training reference",
            ["feature"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.drift_detected = Gauge(
            "churnops_drift_detected",
            "1 when any feature's PSI is above serve.psi_threshold (needs drift_min_samples)",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.prediction_psi = Gauge(
            "churnops_prediction_drift_psi",
            "PSI of the drift window's churn probabilities against the test split's",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        # Labelled, so absent (not 0) until the window first holds drift_min_samples customers.
        self.estimated = Gauge(
            "churnops_estimated_performance",
            "Quality estimated from the drift window's churn probabilities, without labels "
            "(confidence-based performance estimation with the calibration of the test split)",
            ["metric"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.window_customers = Gauge(
            "churnops_drift_window_customers",
            "Customers in the drift window (all workers' traffic)",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        buckets = Counter(
            BUCKETS_METRIC,
            "Customers in the drift monitoring sample, by feature (and churn_probability) and "
            "drift bucket (the profile's buckets; the last is missing or unknown)",
            ["feature", "bucket"],
            registry=registry,
        )
        self.window = DriftWindow(
            profile, int(serve["drift_window"]), buckets, lambda: read_bucket_totals(registry)
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
        self._groups = groups
        # What requests leave for the next flush, as tuples of atomic values (see DriftWindow):
        # (status, seconds) of each answer; the group counts and the probabilities of each
        # scored batch. append and popleft are atomic.
        self._answered: deque[tuple[int, float]] = deque()
        self._scored: deque[tuple[float, ...]] = deque()
        self._durations: dict[int, Any] = {}
        self.registry = registry

    def observe_predictions(
        self, columns: Mapping[str, Sequence[Any]], probabilities: Sequence[float]
    ) -> None:
        """Count a scored batch and feed the drift window, at the next flush."""
        counts: list[int] = []
        sample_columns, sample = monitoring_sample(columns, probabilities, self.request_cap)
        churned = [p >= self.decision_threshold for p in sample]
        churners = sum(churned)
        for feature in schema.SENSITIVE_FEATURES:  # binary: groups 0 and 1
            group = sample_columns[feature]
            in_one, churners_in_one = sum(group), sum(compress(churned, group))
            counts += (len(sample) - in_one, churners - churners_in_one, in_one, churners_in_one)
        self._scored.append((*counts, *probabilities))
        self.window.add({**sample_columns, cbpe.PREDICTION: sample})

    def observe_request(self, status: int, seconds: float) -> None:
        """Time one answered POST /predict under its HTTP status, at the next flush."""
        self._answered.append((status, seconds))

    def flush(self) -> None:
        """Write what requests left pending to the metrics: every worker's request path only
        appends, and each metric is written once a flush (under BentoML each write goes to a
        shared-memory file: about 9 a request before)."""
        answered = [self._answered.popleft() for _ in range(len(self._answered))]
        for status in {status for status, _ in answered}:
            duration = self._durations.get(status)
            if duration is None:
                duration = self._durations[status] = self.duration.labels(str(status))
            observe_all(duration, [seconds for code, seconds in answered if code == status])
        scored = [self._scored.popleft() for _ in range(len(self._scored))]
        if scored:
            width = 2 * len(self._groups)
            probabilities = list(chain.from_iterable(batch[width:] for batch in scored))
            self.predictions.inc(len(probabilities))
            observe_all(self.churn_probability, probabilities)
            counts = np.sum([batch[:width] for batch in scored], axis=0).tolist()
            for i, key in enumerate(self._groups):
                if counts[2 * i]:
                    self._group_predictions[key].inc(counts[2 * i])
                if counts[2 * i + 1]:
                    self._group_churn[key].inc(counts[2 * i + 1])
        self.window.flush()

    def start(self) -> threading.Thread:
        """Flush every FLUSH_SECONDS (and at exit) and refresh drift every `refresh_seconds`,
        in a daemon thread off the request path: every worker writes its metrics even when
        it gets no more requests, and holds the GIL only briefly (a second's customers
        counted at once stalled requests for 10 ms: p99 4x the bare app's)."""

        def refresh_forever() -> None:
            due = time.monotonic() + self.refresh_seconds
            while True:
                time.sleep(FLUSH_SECONDS)
                try:
                    if time.monotonic() < due:
                        self.flush()
                    else:
                        due = time.monotonic() + self.refresh_seconds
                        self.refresh_drift()
                except Exception:  # one bad flush must not stop every later one
                    logger.exception("writing the churnops metrics failed")

        thread = threading.Thread(target=refresh_forever, name="churnops-drift", daemon=True)
        thread.start()
        atexit.register(self.flush)  # what the last requests left pending
        return thread

    def refresh_drift(self) -> dict[str, float]:
        """Recompute every feature's PSI, the drift verdict, the prediction drift and the
        estimated performance, after a flush; the PSI per feature."""
        self.flush()
        counts = self.window.refresh()
        customers = self.window.customers(counts)
        self.window_customers.set(customers)
        if customers < self.min_samples:
            return {}
        psi = self.window.psi(counts)
        for feature, value in psi.items():
            self.feature_psi.labels(feature).set(value)
        self.drift_detected.set(int(max(psi.values()) > self.psi_threshold))
        reference = self.window.specs[cbpe.PREDICTION]
        probabilities = self.window.of(counts, cbpe.PREDICTION)
        self.prediction_psi.set(cbpe.prediction_psi(reference, probabilities))
        for name, value in cbpe.estimate(reference, probabilities).items():
            self.estimated.labels(name).set(value)
        return psi
