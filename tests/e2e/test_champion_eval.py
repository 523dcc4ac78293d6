"""`churnops evaluate-champion` end to end: the real command, a real Pushgateway on
loopback (Debian's prometheus-pushgateway) and an MLflow SQLite store, all agreeing; the
estimate without labels beside the realised quality, and its error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churnops import cbpe, lineage, schema, snapshots
from churnops.predictor import Predictor
from tests.support.net import free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "pushgateway.log").open("wb")
    process = subprocess.Popen(
        [
            "/usr/bin/prometheus-pushgateway",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={tmp_path / 'pushgateway.data'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/-/ready").status_code == 200, 30, "pushgateway")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def roc_auc_samples(text: str, name: str = "churnops_champion_quality") -> list[float]:
    return [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and s.labels["metric"] == "roc_auc"
    ]


def test_evaluate_champion_records_one_result_in_file_metrics_mlflow_and_pushgateway(
    repo_root: Path, tmp_path: Path, pushgateway: str
):
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result_file, prom_file = tmp_path / "champion.json", tmp_path / "champion.prom"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "churnops"),
            "evaluate-champion",
            *("--output", str(result_file), "--prom-output", str(prom_file)),
            *("--pushgateway", pushgateway),
        ],
        cwd=repo_root,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        check=True,
        capture_output=True,
    )
    result = json.loads(result_file.read_text())
    newest = snapshots.snapshot_paths(repo_root / "data")[-1]
    labeled = pd.read_csv(newest)[schema.TARGET].isin(schema.TARGET_VALUES).sum()
    roc_auc = result["quality"]["roc_auc"]

    assert result["snapshot"] == newest.name
    assert result["rows"] == labeled
    assert result["model_sha256"] == lineage.file_sha256(repo_root / "models/model.onnx")
    assert 0.5 < roc_auc <= 1
    assert roc_auc_samples(prom_file.read_text()) == [roc_auc]
    assert roc_auc_samples(httpx.get(f"{pushgateway}/metrics").text) == [roc_auc]
    mlflow.set_tracking_uri(tracking_uri)
    run = mlflow.get_run(result["mlflow_run_id"])
    assert run.data.tags["churnops.kind"] == "champion-evaluation"
    assert run.data.metrics["champion.quality.roc_auc"] == roc_auc
    estimate = result["estimate"]
    assert estimate["realised"] == {m: result["quality"][m] for m in cbpe.METRICS}
    for metric, error in estimate["error"].items():
        assert error == pytest.approx(
            estimate["realised"][metric] - estimate["estimated"][metric], abs=1e-6
        )
    # The estimate is the service's, from the model's probabilities alone: no labels.
    reference = json.loads((repo_root / "models/reference_profile.json").read_text())
    reference = reference[cbpe.PREDICTION]
    customers = pd.read_csv(newest)
    customers = customers[customers[schema.TARGET].isin(schema.TARGET_VALUES)]
    probability = Predictor(repo_root / "models/model.onnx").churn_probability(
        schema.feature_columns(customers.drop(columns=[schema.TARGET]))
    )
    assert estimate["estimated"] == cbpe.estimate(
        reference, cbpe.bin_counts(reference, probability)
    )
    prom = prom_file.read_text()
    estimated_auc = estimate["estimated"]["roc_auc"]
    assert roc_auc_samples(prom, "churnops_champion_estimated_quality") == [estimated_auc]
    error_auc = estimate["error"]["roc_auc"]
    assert roc_auc_samples(prom, "churnops_champion_estimate_error") == [error_auc]
    assert run.data.metrics["champion.estimate.error.roc_auc"] == error_auc
