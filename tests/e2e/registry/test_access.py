"""Least privilege on the team's tracking server: what CI's identity can and cannot do.

CI and CT register candidates and record champion evaluations; only CD's identity can
release a model as `champion` or roll it back. A refusal names the identity and the
permission it lacks, and changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.e2e.registry.conftest import identity
from tests.e2e.registry.workspace import (
    churnops,
    churnops_process,
    clone,
    commit_all,
    write_candidate,
)
from tests.support.mlflow_server import TeamServer

CANDIDATES, RELEASED = "churnops-candidates", "churnops"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, repo_root: Path, client: MlflowClient) -> Path:
    path = clone(repo_root, tmp_path_factory.mktemp("access") / "churnops")
    write_candidate(path, "v1", roc_auc=0.84)
    commit_all(path, "model v1")
    return path


def test_the_server_answers_nobody_without_credentials(team_server: TeamServer) -> None:
    search = f"{team_server.uri}/api/2.0/mlflow/registered-models/search"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(search, timeout=30)
    assert refused.value.code == 401


def test_ci_registers_a_candidate_but_cannot_release_it(
    repo: Path, client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity(monkeypatch, "ci")
    registered = churnops(repo, "register")
    assert registered.returncode == 0, registered.stderr
    assert client.get_model_version_by_alias(CANDIDATES, "challenger").version == "1"

    refused = churnops(repo, "promote")
    assert refused.returncode != 0
    assert "the MLflow identity churnops-ci may not move champion" in refused.stderr
    assert "EDIT on the registered model 'churnops'" in refused.stderr
    assert client.search_model_versions(f"name = '{RELEASED}'") == []

    identity(monkeypatch, "cd")
    assert churnops(repo, "promote").returncode == 0
    assert client.get_model_version_by_alias(RELEASED, "champion").version == "1"


def test_ci_cannot_move_champion_by_rollback(repo: Path, client: MlflowClient) -> None:
    client.set_model_version_tag(RELEASED, "1", "image_digest", "sha256:" + "1" * 64)
    refused = churnops_process(
        repo,
        "rollback",
        "--to",
        "1",
        "--move-champion",
        MLFLOW_TRACKING_USERNAME="churnops-ci",
        MLFLOW_TRACKING_PASSWORD="ci-password-for-tests",
    )
    assert refused.returncode != 0
    assert "rollback: the MLflow identity churnops-ci may not move champion" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_ci_records_a_champion_evaluation(
    repo_root: Path, tmp_path: Path, team_server: TeamServer, client: MlflowClient
) -> None:
    result_file = tmp_path / "champion.json"
    outputs = ["--output", str(result_file), "--prom-output", str(tmp_path / "champion.prom")]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "churnops"), "evaluate-champion", *outputs],
        cwd=repo_root,
        env={
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "MLFLOW_TRACKING_URI": team_server.uri,
            "MLFLOW_TRACKING_USERNAME": "churnops-ci",
            "MLFLOW_TRACKING_PASSWORD": "ci-password-for-tests",
        },
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    run = client.get_run(json.loads(result_file.read_text())["mlflow_run_id"])
    assert run.data.tags["churnops.kind"] == "champion-evaluation"


def test_a_wrong_password_is_refused_with_a_clear_message(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "churnops-ci")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    done = churnops(repo, "register")
    assert done.returncode != 0
    assert "register: the tracking server did not accept churnops-ci's credentials" in done.stderr


def test_mlflow_access_is_idempotent_and_needs_a_password_for_a_new_user(
    team_server: TeamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", team_server.admin[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", team_server.admin[1])
    again = churnops(Path.cwd(), "mlflow-access")
    assert again.returncode == 0, again.stderr
    assert "churnops-ci: READ on registered_model churnops" in again.stdout
    monkeypatch.delenv("MLFLOW_CI_PASSWORD", raising=False)
    new = churnops(Path.cwd(), "mlflow-access", "--ci-user", "someone-new")
    assert new.returncode != 0
    assert "user someone-new does not exist: set MLFLOW_CI_PASSWORD" in new.stderr
