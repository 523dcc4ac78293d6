"""The tracking server as teams run it, for these tests: `mlflow server --app-name basic-auth`
on PostgreSQL with artifacts in an S3 bucket (tests/support/mlflow_server.py).

One server for the session (it takes a while to start). Each test module gets an empty
registry, the grants `churnops mlflow-access` makes, and the environment the workflows
set: MLFLOW_TRACKING_URI and the CD identity (CI's where a test says so).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from churnops.release import access
from churnops.release.registry import CANDIDATES, REGISTERED_MODEL
from tests.support.mlflow_server import TeamServer, team_mlflow_server

IDENTITIES = {
    "ci": ("churnops-ci", "ci-password-for-tests"),
    "cd": ("churnops-cd", "cd-password-for-tests"),
}


@pytest.fixture(scope="session")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServer]:
    with team_mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(scope="session")
def tracking_uri(team_server: TeamServer) -> str:
    return team_server.uri


def identity(patch: pytest.MonkeyPatch, name: str) -> None:
    """Make the churnops commands (this process and its children) act as "ci" or "cd"."""
    username, password = IDENTITIES[name]
    patch.setenv("MLFLOW_TRACKING_USERNAME", username)
    patch.setenv("MLFLOW_TRACKING_PASSWORD", password)


@pytest.fixture(scope="module")
def client(team_server: TeamServer) -> Iterator[MlflowClient]:
    """A client of an empty registry; it and the churnops commands act as CD."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", team_server.uri)
        patch.setenv("MLFLOW_TRACKING_USERNAME", team_server.admin[0])
        patch.setenv("MLFLOW_TRACKING_PASSWORD", team_server.admin[1])
        registry = MlflowClient(team_server.uri)
        for name in (CANDIDATES, REGISTERED_MODEL):
            with contextlib.suppress(MlflowException):  # nothing registered yet
                registry.delete_registered_model(name)
        for name, (_, password) in IDENTITIES.items():
            patch.setenv(f"MLFLOW_{name.upper()}_PASSWORD", password)
        access.grant({name: user for name, (user, _) in IDENTITIES.items()})
        identity(patch, "cd")  # which reads everything, as the tests' own client does
        yield registry
