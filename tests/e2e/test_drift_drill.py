"""The drift drill (`make drift-drill`): drift in live traffic starts exactly one retrain.

Real processes on loopback: `bentoml serve`, Prometheus and Alertmanager loaded with
k8s/monitoring/'s rules and routing, and the retrain trigger. GitHub's API is the one
mock (a local stand-in recording workflow dispatches): it cannot be reached here.
Also checks the Grafana dashboard against the metrics these real processes export.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from churnops import snapshots
from churnops.retraining import champion as champion_eval
from tests.support.drill import (
    DRILL_BOUND_SECONDS,
    Loop,
    Timing,
    customers,
    report_bound,
    result_json,
    run_drill,
    running_loop,
)

pytestmark = pytest.mark.slow

DASHBOARD = Path("k8s/monitoring/grafana-dashboard.json")
# `make drift-drill-production` sets this to run the loop with production's timings.
TIMING_MODE = os.environ.get("CHURNOPS_DRILL_TIMING", "drill")


@pytest.fixture(scope="module")
def timing(repo_root: Path) -> Timing:
    return Timing.production(repo_root) if TIMING_MODE == "production" else Timing()


@pytest.fixture(scope="module")
def loop(
    repo_root: Path, timing: Timing, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loop]:
    with running_loop(repo_root, tmp_path_factory.mktemp("drill"), timing) as running:
        yield running


def test_drift_starts_exactly_one_retrain_within_the_bound(
    loop: Loop, timing: Timing, repo_root: Path, artifacts_dir: Path
):
    production_total = report_bound(repo_root)
    bound = DRILL_BOUND_SECONDS if timing.storm_check else production_total
    result = run_drill(loop, repo_root, timing, bound_seconds=bound)
    suffix = "" if TIMING_MODE == "drill" else f"-{TIMING_MODE}"
    (artifacts_dir / f"drift-drill{suffix}.json").write_text(result_json(result) + "\n")
    print(
        f"drift-drill: drift onset to workflow dispatch: {result.onset_to_dispatch:.1f} s "
        f"({TIMING_MODE} timings); production worst case {production_total:.0f} s"
    )

    assert result.onset_to_detected < result.onset_to_firing < result.onset_to_dispatch
    assert result.onset_to_dispatch < bound < 300
    assert {"contract", "monthly_charges"} <= set(result.features)
    assert result.dispatches == 1, "one drift episode must give one retrain"
    if timing.storm_check:
        assert result.decisions["duplicate"] >= 1, "Alertmanager's repeats must be de-duplicated"
        assert result.decisions["cooldown"] >= 1, "a re-fired alert must hit the cooldown"


def exported_names(text: str) -> set[str]:
    """Sample names (with _bucket, _count, _total...) in a Prometheus text exposition."""
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def grafana(expr: str) -> str:
    """A panel query as Grafana sends it, with the dashboard's variables filled in."""
    return (
        expr.replace("$namespace", "churnops-production")
        .replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
    )


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    panels = [p for row in dashboard["panels"] for p in [row, *row.get("panels", [])]]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


# What the dashboard must show (issues 5 and 16): latency, errors, traffic, the prediction
# distribution, drift, fairness in live traffic, quality on fresh labeled data, and the
# performance estimated before labels with prediction drift and the estimate's error.
REQUIRED = (
    "churnops_request_duration_seconds_bucket",
    "churnops_internal_errors_total",
    "churnops_rejected_requests_total",
    "churnops_predictions_total",
    "churnops_churn_probability_bucket",
    "churnops_feature_drift_psi",
    "churnops_group_churn_predictions_total",
    "churnops_champion_quality",
    "churnops_estimated_performance",
    "churnops_prediction_drift_psi",
    "churnops_champion_estimate_error",
)


def test_every_dashboard_query_names_metrics_that_are_really_exported(loop: Loop, repo_root: Path):
    sample = customers(pd.read_csv(snapshots.snapshot_paths(repo_root / "data")[-1]).head(5))
    loop.predict(sample)
    invalid = loop.client.post(
        f"{loop.service}/predict", json={"customers": [{**sample[0], "tenure": -1}]}
    )
    assert 400 <= invalid.status_code < 500  # so that a rejection reason is exported
    champion = champion_eval.run(repo_root / "models", repo_root / "data")
    exported = (
        exported_names(loop.client.get(f"{loop.service}/metrics").text)
        | exported_names(loop.client.get(f"{loop.trigger}/metrics").text)
        | exported_names(generate_latest(champion_eval.metrics_registry(champion)).decode())
    )
    queries = panel_queries(json.loads((repo_root / DASHBOARD).read_text()))
    named = set()
    for title, expr in queries:
        names = set(re.findall(r"\bchurnops_[a-z0-9_]+", expr))
        assert names, f"panel {title!r} queries no churnops metric: {expr}"
        assert names <= exported, f"panel {title!r} names unexported {names - exported}"
        named |= names
        answer = loop.client.get(f"{loop.prometheus}/api/v1/query", params={"query": grafana(expr)})
        assert answer.json()["status"] == "success", f"panel {title!r}: {answer.text}"

    assert set(REQUIRED) <= named, f"no panel shows {set(REQUIRED) - named}"
