"""Airflow DAG `churnops_pipeline`: the repository's pipeline, nightly, as Airflow tasks.

Every task runs one command of the repository, so Airflow adds a schedule, retries and a
UI but no stage logic: `churnops ingest` for the run's date, `dvc repro --single-item
STAGE` for each stage of dvc.yaml (wired by dvc.yaml's own deps and outs, so a new stage
there is a new task here), then `churnops register`. DVC records each stage in dvc.lock
as it finishes and skips stages whose inputs did not change; the gate alone writes
models/, so a failed run leaves the champion in place.

Settings (environment of the scheduler and workers): CHURNOPS_REPO, the checkout to run
in (default: the repository holding this file); CHURNOPS_VENV, the virtualenv with
churnops and its dependencies (default: CHURNOPS_REPO/.venv); MLFLOW_TRACKING_URI as for
the pipeline itself; CHURNOPS_RETRY_DELAY_SECONDS, the first retry's delay (default 120,
doubling after each failure; the end-to-end test shortens it).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import yaml
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

REPO = Path(os.environ.get("CHURNOPS_REPO", Path(__file__).resolve().parents[2]))
VENV = Path(os.environ.get("CHURNOPS_VENV", REPO / ".venv"))
# Stage commands (dvc.yaml's `python -m churnops.STAGE`) find the venv's python first,
# and import the code of this checkout whatever the venv was installed from.
TASK_ENV = {
    "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
    "PYTHONPATH": str(REPO / "src"),
}
RETRY_DELAY = timedelta(seconds=int(os.environ.get("CHURNOPS_RETRY_DELAY_SECONDS", "120")))
OUTPUT_KEYS = ("outs", "metrics", "plots")


def _paths(entries: list[Any] | None) -> set[str]:
    """Paths of a dvc.yaml list, whose items are a path or {path: options}."""
    return {entry if isinstance(entry, str) else next(iter(entry)) for entry in entries or ()}


def stage_graph(dvc_yaml: Path) -> dict[str, set[str]]:
    """Each stage of dvc.yaml and the stages whose outputs it depends on."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    producer = {
        path: name
        for name, stage in stages.items()
        for key in OUTPUT_KEYS
        for path in _paths(stage.get(key))
    }
    return {
        name: {producer[dep] for dep in _paths(stage.get("deps")) if dep in producer}
        for name, stage in stages.items()
    }


def _task(task_id: str, command: str, **kwargs: Any) -> BashOperator:
    return BashOperator(
        task_id=task_id,
        bash_command=command,
        cwd=str(REPO),
        env=TASK_ENV,
        append_env=True,
        **kwargs,
    )


with DAG(
    dag_id="churnops_pipeline",
    description="ingest, the stages of dvc.yaml (as `make pipeline` runs them), register",
    doc_md=__doc__,
    schedule="0 2 * * *",  # nightly, 02:00 UTC
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # every run works in the same checkout
    dagrun_timeout=timedelta(hours=3),
    default_args={
        "retries": 2,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(hours=1),
    },
    tags=["churnops"],
) as dag:
    graph = stage_graph(REPO / "dvc.yaml")
    ingest = _task("ingest", "churnops ingest --date {{ ds }}")
    stages = {
        # A gate's verdict is deterministic: retrying a failed gate cannot change it.
        name: _task(
            name, f"dvc repro --single-item {name}", **({"retries": 0} if name == "gate" else {})
        )
        for name in graph
    }
    register = _task("register", "churnops register")
    for name, upstream in graph.items():
        stages[name].set_upstream([stages[u] for u in upstream] or [ingest])
    downstream = set().union(*graph.values())
    register.set_upstream([stages[name] for name in graph if name not in downstream])
