"""The real `dvc repro` in a fresh clone: reproducible, incremental, and all-or-nothing.

Tracking goes to a real `mlflow server` started for these tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from churnops import schema
from tests.support.mlflow_server import mlflow_server
from tests.support.postgres import create_database, postgres_server
from tests.support.warehouse import Warehouse, at, drifted_customers

VENV_BIN = str(Path(sys.executable).parent)
WATCHED = (
    "dvc.lock",
    "models/model.onnx",
    "models/reference_profile.json",
    "models/model_card.json",
)


def run(clone: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=clone,
        env={
            **os.environ,
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
            "PYTHONPATH": str(clone / "src"),  # the clone's own code, not the installed one
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def fingerprint(clone: Path) -> dict[str, str]:
    return {name: hashlib.sha256((clone / name).read_bytes()).hexdigest() for name in WATCHED}


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture(scope="module")
def clone(tmp_path_factory, repo_root: Path, tracking_uri: str) -> Path:
    """A fresh clone of the committed repository, with its data, after one pipeline run."""
    path = tmp_path_factory.mktemp("clone") / "churnops"
    subprocess.run(["git", "clone", "--quiet", str(repo_root), str(path)], check=True)
    assert run(path, "-m", "churnops.intake.fetch").returncode == 0
    first = run(path, "-m", "churnops.repro", MLFLOW_TRACKING_URI=tracking_uri)
    assert first.returncode == 0, first.stdout + first.stderr
    return path


def pipeline(clone: Path, tracking_uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(clone, "-m", "churnops.repro", *args, MLFLOW_TRACKING_URI=tracking_uri)


def git_status(clone: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout


def test_fresh_clone_reproduces_the_committed_model_and_lock(clone: Path) -> None:
    card = yaml.safe_load((clone / "models" / "model_card.json").read_text())
    model = hashlib.sha256((clone / "models" / "model.onnx").read_bytes()).hexdigest()
    assert model == card["model_sha256"]
    assert git_status(clone) == "", "dvc.lock, reports or the model card differ from the commit"
    assert yaml.safe_load((clone / "reports" / "gate.json").read_text())["passed"] is True


def test_a_fresh_clone_on_another_cpu_reproduces_them_too(
    tmp_path: Path, repo_root: Path, tracking_uri: str
) -> None:
    """An AVX-512 runner: OpenBLAS's SkylakeX kernel (tests/model has every kernel)."""
    path = tmp_path / "churnops"
    subprocess.run(["git", "clone", "--quiet", str(repo_root), str(path)], check=True)
    assert run(path, "-m", "churnops.intake.fetch").returncode == 0
    result = run(
        path, "-m", "churnops.repro", MLFLOW_TRACKING_URI=tracking_uri, OPENBLAS_CORETYPE="SkylakeX"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert git_status(path) == "", "another CPU changed dvc.lock, reports or the model card"


def test_dvcs_own_commands_work_as_the_readme_shows(clone: Path, tmp_path: Path) -> None:
    """With the venv on PATH (activated): an experiment in a copy, its table, the plots."""
    experiment = run(
        clone,
        "-m",
        "dvc",
        "exp",
        "run",
        "--temp",
        "-S",
        "train.hyperparams.logistic_regression.C=0.7",
    )
    assert experiment.returncode == 0, experiment.stdout + experiment.stderr
    assert "Ran experiment(s)" in experiment.stdout
    assert git_status(clone) == "", "an experiment with --temp leaves the workspace alone"
    table = run(clone, "-m", "dvc", "exp", "show", "--json")
    assert table.returncode == 0 and '"C": 0.7' in table.stdout
    plots = run(clone, "-m", "dvc", "plots", "show", "-o", str(tmp_path / "plots"))
    assert plots.returncode == 0 and (tmp_path / "plots" / "index.html").exists()


def test_nothing_changed_reruns_nothing(clone: Path, tracking_uri: str) -> None:
    result = pipeline(clone, tracking_uri)
    assert result.returncode == 0
    assert "Running stage" not in result.stdout
    assert "Data and pipelines are up to date" in result.stdout


def test_forced_rerun_is_byte_identical(clone: Path, tracking_uri: str) -> None:
    before = fingerprint(clone)
    metrics = (clone / "reports" / "metrics.json").read_bytes()
    assert pipeline(clone, tracking_uri, "--force").returncode == 0
    assert fingerprint(clone) == before
    assert (clone / "reports" / "metrics.json").read_bytes() == metrics


def test_every_stage_of_a_run_is_tracked_in_mlflow(clone: Path, tracking_uri: str) -> None:
    """The forced rerun above ran every stage; each added its results to the train run."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("churnops").experiment_id
    run_info = client.search_runs(experiment, order_by=["attributes.start_time DESC"])[0]
    assert run_info.data.params["estimator"] == "logistic_regression"
    assert run_info.data.metrics.get("test.roc_auc", 0) >= 0.83, run_info.data.metrics
    assert run_info.data.tags["data_hash"].endswith(".dir")
    assert len(run_info.data.tags["git_commit"]) == 40
    artifacts = {a.path for a in client.list_artifacts(run_info.info.run_id, "candidate")}
    assert "candidate/model.onnx" in artifacts
    assert client.search_logged_models([run_info.info.experiment_id])  # the sklearn pipeline


def _edit_params(clone: Path, edit) -> None:
    params = yaml.safe_load((clone / "params.yaml").read_text())
    edit(params)
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _restore(clone: Path) -> None:
    subprocess.run(["git", "checkout", "--", "params.yaml", "reports"], cwd=clone, check=True)


def test_failed_gate_leaves_lock_and_models_as_they_were(clone: Path, tracking_uri: str) -> None:
    before = fingerprint(clone)
    _edit_params(clone, lambda p: p["gate"]["floors"].update(roc_auc=0.99))
    result = pipeline(clone, tracking_uri)
    assert result.returncode != 0
    assert "FAILED: roc_auc is 0.84" in result.stdout
    assert "models/ keeps the champion" in result.stderr
    assert fingerprint(clone) == before
    gate = yaml.safe_load((clone / "reports" / "gate.json").read_text())
    assert gate["passed"] is False
    _restore(clone)


def test_invalid_hyperparameter_is_named_and_changes_nothing(
    clone: Path, tracking_uri: str
) -> None:
    before = fingerprint(clone)
    _edit_params(clone, lambda p: p["train"]["hyperparams"]["logistic_regression"].update(C=-1))
    result = pipeline(clone, tracking_uri)
    assert result.returncode != 0
    assert "params.yaml train.hyperparams.logistic_regression is invalid" in result.stderr
    assert "The 'C' parameter" in result.stderr
    assert fingerprint(clone) == before
    _restore(clone)


def test_crash_mid_stage_leaves_lock_and_models_as_they_were(
    clone: Path, tracking_uri: str
) -> None:
    """Train writes its model, then cannot reach the tracking server and crashes."""
    before = fingerprint(clone)
    result = run(
        clone,
        "-m",
        "churnops.repro",
        "--force",
        "--single-item",
        "train",
        MLFLOW_TRACKING_URI="http://127.0.0.1:9",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )
    assert result.returncode != 0
    assert "failed to reproduce 'train'" in result.stderr
    assert "dvc.lock and models/ are as they were" in result.stderr
    assert fingerprint(clone) == before
    assert MlflowClient(tracking_uri).search_registered_models() == []


def _frame_edit(edit):
    """A corruption of the snapshot's CSV text made through pandas."""

    def corrupt(text: str) -> str:
        frame = pd.read_csv(io.StringIO(text))
        edit(frame)
        return frame.to_csv(index=False, lineterminator="\n")

    return corrupt


BAD_DATA = [
    (_frame_edit(lambda f: f.pop("tenure")), "missing columns ['tenure']"),
    (
        _frame_edit(lambda f: f.__setitem__("tenure", f["tenure"].astype(str) + "m")),
        "column 'tenure': expect_column_values_to_be_in_type_list",
    ),
    (
        _frame_edit(lambda f: f.loc.__setitem__((0, "contract"), "Monthly")),
        "column 'contract': expect_column_values_to_be_in_set",
    ),
    (lambda text: "", "is empty"),
    (
        _frame_edit(lambda f: f.__setitem__("monthly_charges", None)),
        "column 'monthly_charges': expect_column_values_to_not_be_null",
    ),
    (
        _frame_edit(lambda f: f.__setitem__("churn", f["churn"].map({"Yes": 1, "No": 0}))),
        "column 'churn': expect_column_values_to_be_in_set",
    ),
]
IDS = ["missing-column", "wrong-type", "unknown-category", "empty-file", "all-null", "bad-target"]


@pytest.mark.parametrize(("corrupt", "message"), BAD_DATA, ids=IDS)
def test_bad_data_stops_at_validation(clone: Path, tracking_uri: str, corrupt, message) -> None:
    snapshot = clone / "data" / "2026-11-01.csv"
    original = snapshot.read_text()
    before = fingerprint(clone)
    snapshot.write_text(corrupt(original))
    try:
        result = pipeline(clone, tracking_uri)
    finally:
        snapshot.write_text(original)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Running stage 'split'" not in result.stdout
    assert fingerprint(clone) == before
    _restore(clone)


def _regularization(c: float):
    return lambda params: params["train"]["hyperparams"]["logistic_regression"].update(C=c)


def test_a_model_restored_from_the_run_cache_names_the_run_that_trained_it(
    clone: Path, tracking_uri: str
) -> None:
    """Params A -> B -> A: DVC restores A's pipeline from its run cache without training,
    and the model card names an MLflow run that trained exactly those bytes, not B's."""
    client = MlflowClient(tracking_uri)
    pipeline_file = clone / "build" / "pipeline.joblib"
    trained_a = hashlib.sha256(pipeline_file.read_bytes()).hexdigest()
    try:
        _edit_params(clone, _regularization(0.5))
        to_b = pipeline(clone, tracking_uri)
        assert to_b.returncode == 0, to_b.stdout + to_b.stderr
        run_b = yaml.safe_load((clone / "models" / "model_card.json").read_text())
        assert client.get_run(run_b["mlflow_run_id"]).data.params["C"] == "0.5"
        _edit_params(clone, _regularization(1.0))
        back = pipeline(clone, tracking_uri)
        assert back.returncode == 0, back.stdout + back.stderr
        assert "Stage 'train' is cached - skipping run" in back.stdout
        assert hashlib.sha256(pipeline_file.read_bytes()).hexdigest() == trained_a
        card = yaml.safe_load((clone / "models" / "model_card.json").read_text())
        named = client.get_run(card["mlflow_run_id"])
        assert card["mlflow_run_id"] != run_b["mlflow_run_id"]
        assert named.data.tags["pipeline_sha256"] == trained_a
        assert named.data.params["C"] == "1.0"
        assert "test.roc_auc" in named.data.metrics  # evaluate logged into that same run
    finally:
        subprocess.run(
            ["git", "checkout", "--", "params.yaml", "reports", "models", "dvc.lock"],
            cwd=clone,
            check=True,
        )


def test_ct_scores_champion_and_challenger_on_the_same_newest_snapshot(
    clone: Path, tmp_path: Path, tracking_uri: str
) -> None:
    """CT's path in a copy of the clone: a drifted snapshot arrives, the champion is scored
    on it (evaluate-champion), then `make ct-pipeline` holds it out of training and the gate
    scores champion and challenger on exactly its rows; the verdict is byte-reproducible."""
    ct = tmp_path / "ct"
    shutil.copytree(clone, ct, symlinks=True)
    (ct / ".venv").symlink_to(Path(VENV_BIN).parent)
    tracked = {"MLFLOW_TRACKING_URI": tracking_uri}
    churnops = str(Path(VENV_BIN) / "churnops")
    ingest = ("ingest", "--scenario", "price_rise", "--date", "2026-12-03")
    assert run(ct, churnops, *ingest).returncode == 0
    scored = run(ct, churnops, "evaluate-champion", **tracked)
    assert scored.returncode == 0, scored.stdout + scored.stderr
    champion_models = {p.name: p.read_bytes() for p in (ct / "models").iterdir() if p.is_file()}
    make = ["make", "--no-print-directory", "-o", ".venv/.installed"]
    env = {**os.environ, "PYTHONPATH": str(ct / "src"), **tracked}
    done = subprocess.run([*make, "ct-pipeline"], cwd=ct, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

    assert "holdout: newest_snapshot" in (ct / "params.yaml").read_text()
    metrics = json.loads((ct / "reports" / "metrics.json").read_text())
    champion = json.loads((ct / "reports" / "champion.json").read_text())
    gate_file = ct / "reports" / "gate.json"
    gate = json.loads(gate_file.read_text())
    compared = gate["comparison"]
    assert metrics["rows"] == {"train": 7043, "test": 500}  # the new snapshot, held out
    assert compared["on"] == "newest_snapshot" and compared["rows"] == champion["rows"] == 500
    assert gate["baseline"] == champion["model_sha256"]
    seen = champion["quality"] | champion["fairness"]
    trained = metrics["test"] | metrics["fairness"]  # by sklearn; the gate scores the ONNX
    for name, entry in compared["metrics"].items():
        assert entry["champion"] == pytest.approx(seen[name], abs=1e-6), name
        assert entry["challenger"] == pytest.approx(trained[name], abs=1e-4), name
        low, high = entry["interval"]
        assert low <= entry["difference"] <= high, name

    # The same champion, candidate and holdout give the same verdict, byte for byte.
    verdict = gate_file.read_bytes()
    for name, content in champion_models.items():
        (ct / "models" / name).write_bytes(content)
    again = pipeline(ct, tracking_uri, "--force", "--single-item", "gate")
    assert again.returncode == 0, again.stdout + again.stderr
    assert gate_file.read_bytes() == verdict


def test_ct_from_the_warehouse_estimates_then_decides_on_the_same_rows(
    clone: Path, tmp_path: Path, tracking_uri: str
) -> None:
    """The CT drill against a real database: customers served after a price rise get their
    churn labels in PostgreSQL weeks later (some not yet); CT ingests those that arrived,
    records the champion's estimate without labels beside the realised quality on them, and
    the gate's verdict on exactly those rows, champion against challenger, decides."""
    ct = tmp_path / "ct"
    shutil.copytree(clone, ct, symlinks=True)
    (ct / ".venv").symlink_to(Path(VENV_BIN).parent)
    tracked = {"MLFLOW_TRACKING_URI": tracking_uri}
    churnops = str(Path(VENV_BIN) / "churnops")
    customers = drifted_customers(600, date(2026, 11, 20))
    ids = customers[schema.ID_COLUMN]
    with postgres_server() as server:
        warehouse = Warehouse(create_database(server, "ct_drill"), customers)
        warehouse.label(ids[:450], at("2026-11-25"))  # 150 outcomes not known yet
        ingested = run(
            ct, churnops, "ingest", "--source", "sql", "--date", "2026-12-03",
            CHURNOPS_INGEST_URL=warehouse.url,
        )  # fmt: skip
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    assert "450 customers, source sql" in ingested.stdout

    scored = run(ct, churnops, "evaluate-champion", **tracked)
    assert scored.returncode == 0, scored.stdout + scored.stderr
    champion = json.loads((ct / "reports" / "champion.json").read_text())
    assert champion["rows"] == 450
    estimate = champion["estimate"]
    assert set(estimate["estimated"]) >= {"roc_auc", "precision", "recall"}
    for name, value in estimate["estimated"].items():
        assert estimate["realised"][name] == pytest.approx(champion["quality"][name])
        assert estimate["error"][name] == pytest.approx(
            estimate["realised"][name] - value, abs=1e-6
        )

    champion_model = (ct / "models" / "model.onnx").read_bytes()
    make = ["make", "--no-print-directory", "-o", ".venv/.installed"]
    env = {**os.environ, "PYTHONPATH": str(ct / "src"), **tracked}
    done = subprocess.run([*make, "ct-pipeline"], cwd=ct, env=env, capture_output=True, text=True)
    said = done.stdout + done.stderr
    compared = [line for line in said.splitlines() if "minus champion" in line]
    assert len(compared) == 5 and all("the same 450 holdout rows" in c for c in compared), said
    # The verdict decides: here the challenger keeps up with the champion on those rows, but
    # on the drifted customers it misses the equal-opportunity floor, so the gate refuses,
    # the bot pull request's required check is red and models/ keeps the champion.
    assert done.returncode != 0, said
    assert "gate: FAILED: equal_opportunity_difference" in said
    assert "models/ keeps the champion" in said
    assert (ct / "models" / "model.onnx").read_bytes() == champion_model
