"""A real `mlflow server` (SQLite backend, artifacts in a temporary folder) for these tests.

One server for the session (it takes a while to start); each test module gets an empty
registry, and MLFLOW_TRACKING_URI pointing at the server, as the workflows set it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from churnops.release.registry import REGISTERED_MODEL
from tests.support.mlflow_server import mlflow_server


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


@pytest.fixture(scope="module")
def client(tracking_uri: str) -> Iterator[MlflowClient]:
    """A client of an empty registry; the churnops commands see the same server."""
    registry = MlflowClient(tracking_uri)
    with contextlib.suppress(MlflowException):  # nothing registered yet
        registry.delete_registered_model(REGISTERED_MODEL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        yield registry
