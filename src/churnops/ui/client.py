"""The churn API as the UI sees it: predictions, metadata and live metrics, plain errors.

Every failure (API down, timeout, a refused request, a server error) is an ApiError whose
text can be shown to a person as it is. Batch scoring checks rows with the API's own
validation: rows it names as invalid are set aside with its reason and the rest resent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from churnops import schema

DEFAULT_API_URL = "http://localhost:3000"
TIMEOUT_SECONDS = 10.0
_ROW_FIELD = re.compile(r"^customers\[(\d+)\]\.?(.*)$")


def api_url() -> str:
    """The API's base URL: $CHURNOPS_API_URL, else http://localhost:3000."""
    return os.environ.get("CHURNOPS_API_URL", DEFAULT_API_URL).rstrip("/")


@dataclass
class ApiError(Exception):
    """The API could not be reached or did not accept a request; `message` says why."""

    message: str
    status: int | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


@dataclass
class LiveMetrics:
    """What /metrics says about traffic, drift, predicted churn per group and the quality
    estimated without labels."""

    predictions: float = 0.0
    rejected: dict[str, float] = field(default_factory=dict)
    internal_errors: float = 0.0
    feature_psi: dict[str, float] = field(default_factory=dict)
    drift_detected: bool = False
    window_customers: float = 0.0
    estimated: dict[str, float] = field(default_factory=dict)  # metric -> estimate
    prediction_psi: float | None = None
    # (feature, group) -> (customers scored, customers predicted to churn)
    groups: dict[tuple[str, str], list[float]] = field(default_factory=dict)


def parse_metrics(text: str) -> LiveMetrics:
    """The churnops_* samples of a Prometheus text exposition."""
    live = LiveMetrics()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "churnops_predictions_total":
                live.predictions = value
            elif name == "churnops_rejected_requests_total":
                live.rejected[labels["reason"]] = value
            elif name == "churnops_internal_errors_total":
                live.internal_errors = value
            elif name == "churnops_feature_drift_psi":
                live.feature_psi[labels["feature"]] = value
            elif name == "churnops_drift_detected":
                live.drift_detected = value >= 1
            elif name == "churnops_drift_window_customers":
                live.window_customers = value
            elif name == "churnops_estimated_performance":
                live.estimated[labels["metric"]] = value
            elif name == "churnops_prediction_drift_psi":
                live.prediction_psi = value
            elif name in (
                "churnops_group_predictions_total",
                "churnops_group_churn_predictions_total",
            ):
                counts = live.groups.setdefault((labels["feature"], labels["group"]), [0.0, 0.0])
                counts[name == "churnops_group_churn_predictions_total"] = value
    return live


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase


# The API's server (uvicorn under BentoML) closes a connection idle for 5 s. A client that
# keeps idle connections as long (httpx's default) now and then sends a request on one the
# server is closing, and gets "Server disconnected without sending a response".
# (The connection limits are httpx's defaults.)
KEEP_ALIVE = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)


class ApiClient:
    """Calls the churn API at `base_url`; raises ApiError with a plain message on failure."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._http = httpx.Client(base_url=base_url, timeout=timeout, limits=KEEP_ALIVE)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(
                f"The churn API at {self.base_url} did not answer within {self.timeout:g} s."
            ) from None
        except httpx.TransportError as error:
            raise ApiError(
                f"The churn API at {self.base_url} cannot be reached ({error}). "
                "Is it running? `make serve` starts it."
            ) from None
        if response.status_code >= 500:
            raise ApiError(
                f"The churn API failed to answer {path} (HTTP {response.status_code}). "
                "Try again; if it persists, its logs say why.",
                response.status_code,
            )
        if response.status_code >= 400:
            try:
                errors = list(response.json().get("errors", []))
            except (ValueError, AttributeError):
                errors = []
            raise ApiError(
                f"The API refused the request (HTTP {response.status_code}): {_message(response)}",
                response.status_code,
                errors,
            )
        return response

    def ready(self) -> bool:
        """True when /readyz answers 200 (model loaded, warm-up done)."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def metadata(self) -> dict[str, Any]:
        """Which model is serving: its card, lineage and `serve` settings."""
        return self._call("GET", "/metadata").json()

    def predict(self, customers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One prediction (`churn_probability`, `churn`) per customer, in order."""
        return self._call("POST", "/predict", json={"customers": list(customers)}).json()[
            "predictions"
        ]

    def live_metrics(self) -> LiveMetrics:
        return parse_metrics(self._call("GET", "/metrics").text)


def _invalid_rows(error: ApiError, sent: Sequence[int]) -> dict[int, str]:
    """Row -> reason for each customer the API's validation errors name."""
    reasons: dict[int, str] = {}
    for detail in error.errors:
        match = _ROW_FIELD.match(detail.get("field", ""))
        if match:
            row = sent[int(match.group(1))]
            reasons.setdefault(row, f"{match.group(2) or 'customer'}: {detail.get('message')}")
    return reasons


def score_frame(
    predict: Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]],
    frame: pd.DataFrame,
    max_batch: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scored rows, rejected rows with `row` and `reason`) of a table of customers.

    Rows go to `predict` in batches of `max_batch`; when the API rejects a batch and names
    invalid customers, they are set aside with its reason and the rest of the batch resent.
    """
    schema.require_features(frame.columns, "the file")
    records = schema.records_of(schema.request_columns(frame))
    reasons: dict[int, str] = {}
    answers: dict[int, dict[str, Any]] = {}
    for start in range(0, len(records), max_batch):
        pending = list(range(start, min(start + max_batch, len(records))))
        while pending:
            try:
                predictions = predict([records[i] for i in pending])
            except ApiError as error:
                invalid = _invalid_rows(error, pending)
                if not invalid:
                    raise
                reasons.update(invalid)
                pending = [i for i in pending if i not in invalid]
                continue
            answers.update(zip(pending, predictions, strict=True))
            break
    scored_rows = sorted(answers)
    scored = frame.iloc[scored_rows].copy()
    scored["churn_probability"] = [answers[i]["churn_probability"] for i in scored_rows]
    scored["churn"] = [answers[i]["churn"] for i in scored_rows]
    rejected_rows = sorted(reasons)
    rejects = frame.iloc[rejected_rows].copy()
    rejects.insert(0, "reason", [reasons[i] for i in rejected_rows])
    rejects.insert(0, "row", rejected_rows)
    return scored, rejects
