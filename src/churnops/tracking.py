"""MLflow tracking: a local SQLite store by default, any server via MLFLOW_TRACKING_URI.

Train starts one run per fit and tags it with the sha256 of the pipeline it wrote; the
later stages find that run by the pipeline file in build/, so they add to the run that
trained exactly those bytes, even when DVC restored them from its run cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnops import lineage
from churnops.config import PIPELINE

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT = "churnops"
PIPELINE_TAG = "pipeline_sha256"


class TrackingError(RuntimeError):
    """The tracking store has no record of what a stage needs; the message says what to do."""


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or the local SQLite store when it is not set at all."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri is None:
        return DEFAULT_TRACKING_URI
    if not uri.strip():
        raise TrackingError(
            "MLFLOW_TRACKING_URI is set but empty (an unset secret?): set it to the tracking "
            "server's URL, or unset it to use the local store mlflow.db"
        )
    return uri


def configure() -> Any:
    """Point MLflow at the configured store; called by stages, never at import time."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def training_run(pipeline: Path = PIPELINE) -> Any:
    """The newest MLflow run that trained these pipeline bytes."""
    mlflow = configure()
    sha = lineage.file_sha256(pipeline)
    runs = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=f"tags.{PIPELINE_TAG} = '{sha}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        raise TrackingError(
            f"no MLflow run in {tracking_uri()} trained {pipeline} ({sha[:12]}): it was "
            "trained against another tracking store. Run `dvc repro --force train`."
        )
    return runs[0]


def run_identity(run: Any) -> dict[str, str]:
    """What the model card records of the run that trained the model."""
    started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
    return {
        "mlflow_run_id": run.info.run_id,
        "trained_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "trained_from_commit": run.data.tags.get("git_commit", "unknown"),
    }


@contextmanager
def resume_training_run(pipeline: Path = PIPELINE) -> Iterator[Any]:
    """Reopen the run that trained build/pipeline.joblib, to add a later stage's results."""
    run_id = training_run(pipeline).info.run_id
    import mlflow

    with mlflow.start_run(run_id=run_id):
        yield mlflow


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested metrics dict, with dotted keys, as MLflow wants them."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_metrics(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat
