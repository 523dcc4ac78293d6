"""Real `bentoml serve` processes on loopback for the serving tests, and their helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from churnops import schema
from tests.support.bento_server import Server, start_server, stop_server


@pytest.fixture(scope="session")
def test_customers(repo_root: Path) -> list[dict]:
    """Customers of the held-out test split, as JSON request bodies carry them."""
    frame = pd.read_parquet(repo_root / "build" / "test.parquet")
    customers = []
    for record in schema.features_frame(frame).to_dict("records"):
        for feature in schema.FEATURES:
            value = record[feature.name]
            if feature.kind == "binary":
                record[feature.name] = int(value)
            elif feature.kind == "numeric" and value != value:  # NaN: missing
                record[feature.name] = None
        customers.append(record)
    return customers


@pytest.fixture(scope="module")
def source_server(repo_root: Path, artifacts_dir: Path, request) -> Iterator[Server]:
    """`bentoml serve churnops.serving.service:Churnops` from the working tree, serving models/."""
    log = artifacts_dir / f"bentoml-serve-{request.module.__name__.rsplit('.', 1)[-1]}.log"
    server = start_server(
        "churnops.serving.service:Churnops",
        log,
        cwd=repo_root,
        env={"CHURNOPS_MODEL_DIR": str(repo_root / "models"), "CHURNOPS_GIT_COMMIT": "0" * 40},
    )
    yield server
    stop_server(server)
