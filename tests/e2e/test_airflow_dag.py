"""The Airflow DAG end to end: `airflow dags test` in a temporary copy of the repository.

Airflow runs from its own venv (`make setup-airflow`), with AIRFLOW_HOME and its SQLite
metadata DB in a temporary folder. The copy holds this working tree's pipeline files,
gets its data as a fresh clone does, and keeps its own models/, dvc.lock and MLflow store,
so the shared checkout is not touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from churnops import lineage
from churnops.release import registry

pytestmark = pytest.mark.slow

DAG_ID = "churnops_pipeline"
LOGICAL_DATE = "2026-11-02"
# What the pipeline reads; the rest of the tree (venvs, caches) stays out of the copy.
PIPELINE_FILES = (
    ".dvc",
    ".dvcignore",
    ".gitignore",
    "airflow",
    "data.dvc",
    "dvc.lock",
    "dvc.yaml",
    "models",
    "params.yaml",
    "pyproject.toml",
    "reports",
    "src",
)


def _json(stdout: str):
    """The JSON document an airflow command prints last (log lines may come before it)."""
    return json.loads(stdout.strip().splitlines()[-1])


def _run(
    args: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    log: Path | None = None,
):
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (
        f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
        f"{result.stderr[-4000:]}"
    )
    return result


@pytest.fixture(scope="module")
def airflow_bin(repo_root: Path) -> Path:
    path = repo_root / ".venv-airflow" / "bin"
    assert (path / "airflow").exists(), "no .venv-airflow: run `make setup-airflow` first"
    return path


@pytest.fixture(scope="module")
def checkout(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Git repository holding the working tree's pipeline files (tracked or new)."""
    copy = tmp_path_factory.mktemp("checkout")
    listed = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", *PIPELINE_FILES],
        cwd=repo_root,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = repo_root / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost"]
    _run(["git", "init", "-q"], cwd=copy)
    _run(["git", "add", "-A"], cwd=copy)
    _run([*git, "commit", "-q", "-m", "snapshot of the working tree"], cwd=copy)
    return copy


@pytest.fixture(scope="module")
def airflow_env(checkout: Path, airflow_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    """Environment for the airflow CLI: temporary home and SQLite DB, the copy's DAGs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path_factory.mktemp("airflow_home")),
        AIRFLOW__CORE__DAGS_FOLDER=str(checkout / "airflow" / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        CHURNOPS_VENV=sys.prefix,  # the venv running these tests: churnops, dvc, mlflow
        CHURNOPS_RETRY_DELAY_SECONDS="1",
        PATH=f"{airflow_bin}{os.pathsep}{env['PATH']}",
    )
    _run(["airflow", "db", "migrate"], cwd=checkout, env=env)
    return env


def test_dag_has_every_dvc_stage_wired_as_dvc_yaml_says(checkout: Path, airflow_env, airflow_bin):
    dag_file = checkout / "airflow" / "dags" / "churnops_pipeline.py"
    script = (
        "import json, runpy, sys\n"
        "dag = runpy.run_path(sys.argv[1])['dag']\n"
        "print(json.dumps({'schedule': str(dag.schedule), 'catchup': dag.catchup, 'tasks': {\n"
        "  t.task_id: {'upstream': sorted(t.upstream_task_ids), 'retries': t.retries,\n"
        "              'command': t.bash_command} for t in dag.tasks}}))\n"
    )
    out = _run([str(airflow_bin / "python"), "-c", script, str(dag_file)], checkout, airflow_env)
    dag = _json(out.stdout)
    tasks = dag["tasks"]
    stages = yaml.safe_load((checkout / "dvc.yaml").read_text())["stages"]

    assert set(tasks) == {"ingest", *stages, "register"}
    assert dag["schedule"] == "0 2 * * *" and dag["catchup"] is False
    for name in stages:
        assert tasks[name]["command"] == f"dvc repro --single-item {name}"
    assert tasks["validate"]["upstream"] == ["ingest"]
    assert tasks["split"]["upstream"] == ["validate"]
    assert tasks["evaluate"]["upstream"] == ["split", "train"]
    assert tasks["export"]["upstream"] == ["evaluate", "split", "train"]
    assert tasks["register"]["upstream"] == ["gate"]
    assert tasks["ingest"]["retries"] == 2 and tasks["gate"]["retries"] == 0


def test_dags_test_runs_the_pipeline_end_to_end(checkout: Path, airflow_env, artifacts_dir: Path):
    lock_before = yaml.safe_load((checkout / "dvc.lock").read_text())

    command = ["airflow", "dags", "test", DAG_ID, LOGICAL_DATE]
    _run(command, checkout, airflow_env, timeout=900, log=artifacts_dir / "airflow-dags-test.log")

    runs = _json(
        _run(["airflow", "dags", "list-runs", DAG_ID, "-o", "json"], checkout, airflow_env).stdout
    )
    assert [run["state"] for run in runs] == ["success"]
    states = _json(
        _run(
            ["airflow", "tasks", "states-for-dag-run", DAG_ID, runs[0]["run_id"], "-o", "json"],
            checkout,
            airflow_env,
        ).stdout
    )
    stages = yaml.safe_load((checkout / "dvc.yaml").read_text())["stages"]
    assert {s["task_id"]: s["state"] for s in states} == dict.fromkeys(
        ["ingest", *stages, "register"], "success"
    )
    # The run ingested the logical date's snapshot and retrained on it, through DVC.
    assert (checkout / "data" / f"{LOGICAL_DATE}.csv").exists()
    lock_after = yaml.safe_load((checkout / "dvc.lock").read_text())
    data_dep = next(d for d in lock_after["stages"]["validate"]["deps"] if d["path"] == "data")
    before_dep = next(d for d in lock_before["stages"]["validate"]["deps"] if d["path"] == "data")
    assert data_dep["md5"] != before_dep["md5"]
    assert json.loads((checkout / "reports" / "gate.json").read_text())["passed"] is True
    card = json.loads((checkout / "models" / "model_card.json").read_text())
    assert lineage.file_sha256(checkout / "models" / "model.onnx") == card["model_sha256"]
    # `register` made the new model the candidates' challenger in the copy's MLflow store.
    client = MlflowClient(f"sqlite:///{checkout / 'mlflow.db'}")
    version = client.get_model_version_by_alias(registry.CANDIDATES, registry.CHALLENGER)
    assert version.tags["model_sha256"] == card["model_sha256"]
