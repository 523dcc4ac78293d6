"""MLflow tracking: a local SQLite store by default, any server via MLFLOW_TRACKING_URI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT = "churnops"


def configure() -> Any:
    """Point MLflow at the configured store; called by stages, never at import time."""
    import mlflow

    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


@contextmanager
def resume(run_id: str) -> Iterator[Any]:
    """Reopen the run that the train stage started, to add later stages' results."""
    mlflow = configure()
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
