"""`churnops doctor --job JOB`: one line per missing piece, exit 1; a real HTTP server as MLflow."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from churnops import doctor, init
from churnops import identity as ident

PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"
BASIC = "Basic " + base64.b64encode(b"ci:s3cret").decode()
GOOD = {"MLFLOW_TRACKING_USERNAME": "ci", "MLFLOW_TRACKING_PASSWORD": "s3cret"}


class FakeMlflow(BaseHTTPRequestHandler):
    """MLflow's experiments search: 200 for the right credentials, 401 otherwise."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        FakeMlflow.seen.append((self.path, auth))
        if self.path != PROBE:
            self.send_response(404)
            self.end_headers()
            return
        ok = auth == BASIC
        body = json.dumps({"experiments": []} if ok else {"error_code": "UNAUTHENTICATED"})
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeMlflow)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    FakeMlflow.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def root(repo_root: Path, tmp_path: Path) -> Path:
    """A repository whose identity is valid and rendered, with a DVC remote that exists."""
    repo = tmp_path / "repo"
    for name in (str(ident.IDENTITY_FILE), *ident.RENDERED_FILES):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo_root / name, repo / name)
    shutil.copyfile(repo_root / "params.yaml", repo / "params.yaml")
    remote = tmp_path / "remote"
    remote.mkdir()
    init.main(["--repository", "churnops/churnops", "--dvc-remote-url", str(remote)], root=repo)
    return repo


def run(job: str, env: dict[str, str], root: Path) -> tuple[int, list[str]]:
    """The exit code and the lines `churnops doctor --job JOB` prints."""
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            doctor.main(["--job", job, "--timeout", "3"], env=env, root=root)
        except SystemExit as exc:
            code = 1 if exc.code else 0
            print(exc.code)
    return code, out.getvalue().splitlines()


def test_every_workflow_job_has_an_entry() -> None:
    assert set(doctor.JOBS) == {
        "ci-test",
        "ci-train",
        "ci-commit-back",
        "ct",
        "cd-build",
        "cd-staging",
        "cd-production",
        "rollback",
        "fork-training",
    }
    assert doctor.JOBS["ci-test"].secrets == ()
    pushing = {name for name, job in doctor.JOBS.items() if doctor.BOT in job.secrets}
    assert pushing == set(doctor.JOBS) - {
        "ci-test",
        "ci-train",
        "cd-build",
    }  # build: GHCR via GITHUB_TOKEN


def test_missing_env_is_one_line_each_and_exit_1(root: Path, mlflow: str) -> None:
    code, lines = run("ct", {"MLFLOW_TRACKING_URI": mlflow}, root)
    assert code == 1
    assert lines[:2] == [
        "doctor: MLFLOW_TRACKING_USERNAME is not set: add the repository secret "
        "MLFLOW_CI_USERNAME (Settings > Secrets and variables > Actions)",
        "doctor: MLFLOW_TRACKING_PASSWORD is not set: add the repository secret "
        "MLFLOW_CI_PASSWORD (Settings > Secrets and variables > Actions)",
    ]
    assert lines[2].startswith("doctor: GH_TOKEN is not set: mint it in the job")
    assert lines[-1] == "doctor ct (.github/workflows/ct.yml job retrain): 3 to fix"


def test_an_empty_secret_is_an_error_not_a_fallback(root: Path, mlflow: str) -> None:
    env = {**GOOD, "MLFLOW_TRACKING_URI": mlflow, "MLFLOW_TRACKING_PASSWORD": "", "GH_TOKEN": " "}
    code, lines = run("ci-commit-back", env, root)
    assert code == 1
    assert (
        "doctor: MLFLOW_TRACKING_PASSWORD is empty: add the repository secret MLFLOW_CI_PASSWORD "
        "(Settings > Secrets and variables > Actions)"
    ) in lines
    assert any(line.startswith("doctor: GH_TOKEN is empty:") for line in lines)
    assert FakeMlflow.seen == []  # no request without credentials


def test_a_valid_setup_exits_0(root: Path, mlflow: str) -> None:
    env = {**GOOD, "MLFLOW_TRACKING_URI": mlflow, "GH_TOKEN": "t"}
    for job in doctor.JOBS:
        code, lines = run(job, env, root)
        assert (code, lines[-1].endswith("): ready")) == (0, True), (job, lines)
    assert FakeMlflow.seen[0] == (PROBE, BASIC)


def test_ct_needs_the_ingest_url_of_a_real_source(root: Path, mlflow: str) -> None:
    env = {**GOOD, "MLFLOW_TRACKING_URI": mlflow, "GH_TOKEN": "t"}
    code, lines = run("ct", env, root)
    assert code == 0
    notes = [line for line in lines if "ingest.source in params.yaml is synthetic" in line]
    assert notes and "CT trains on generated data" in notes[0], lines
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params.replace("source: synthetic", "source: sql", 1))
    code, lines = run("ct", env, root)
    assert code == 1
    assert lines[0] == (
        "doctor: CHURNOPS_INGEST_URL is not set: the sql source (params.yaml ingest.source) "
        "reads what it names; add the repository secret CHURNOPS_INGEST_URL "
        "(Settings > Secrets and variables > Actions)"
    )
    assert run("ct", {**env, "CHURNOPS_INGEST_URL": "postgresql://w/h"}, root)[0] == 0


def test_mlflow_refusing_the_password_is_not_authorised(root: Path, mlflow: str) -> None:
    env = {
        **GOOD,
        "MLFLOW_TRACKING_URI": mlflow,
        "MLFLOW_TRACKING_PASSWORD": "old",
        "GH_TOKEN": "t",
    }
    code, lines = run("cd-production", env, root)
    assert code == 1
    assert lines[0] == (
        f"doctor: MLflow at {mlflow} is not authorised (HTTP 401): the credentials are refused; "
        "replace the repository secret MLFLOW_CD_PASSWORD (Settings > Secrets and variables "
        "> Actions)"
    )


def test_mlflow_unreachable(root: Path, mlflow: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {**GOOD, "MLFLOW_TRACKING_URI": closed, "GH_TOKEN": "t"}
    code, lines = run("rollback", env, root)
    assert code == 1
    assert lines[0].startswith(f"doctor: MLflow at {closed} is unreachable (")
    assert "check mlflow_tracking_uri in churnops.yaml" in lines[0]


def test_mlflow_uri_comes_from_churnops_yaml_without_the_env(root: Path, mlflow: str) -> None:
    init.main(["--repository", "churnops/churnops", "--mlflow-uri", mlflow], root=root)
    code, _ = run("cd-staging", {**GOOD, "GH_TOKEN": "t"}, root)
    assert code == 0
    assert FakeMlflow.seen == [(PROBE, BASIC)]


def test_a_fork_pull_request_trains_without_secrets(root: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"repo": {"full_name": "x/fork"}}}}))
    env = {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": "churnops/churnops",
        "MLFLOW_TRACKING_USERNAME": "",
        "MLFLOW_TRACKING_PASSWORD": "",
    }
    code, lines = run("ci-train", env, root)
    assert code == 0, lines
    assert lines[0].startswith("doctor: note: MLFLOW_TRACKING_USERNAME is empty: a fork's")
    same_repo = {**env, "GITHUB_REPOSITORY": "x/fork"}
    assert run("ci-train", same_repo, root)[0] == 1


def test_the_dvc_remote_must_exist_and_be_writable_to_push(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote"
    env = {**GOOD, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    env["GH_TOKEN"] = "t"
    remote.rmdir()
    code, lines = run("ci-train", env, root)
    assert code == 1
    assert lines[0].startswith(f"doctor: DVC remote {remote} does not exist: create it")
    remote.mkdir()
    assert run("ct", env, root)[0] == 0
    # Read-only for this user (faked: the tests may run as root, who writes anywhere).
    real_access = os.access
    monkeypatch.setattr(
        doctor.os,
        "access",
        lambda path, mode: real_access(path, mode) and Path(path) != remote,
    )
    assert run("ci-train", env, root)[0] == 0  # reads only
    code, lines = run("ct", env, root)
    assert code == 1
    assert lines[0].startswith(f"doctor: DVC remote {remote} is not writable")


def test_an_s3_remote_needs_its_credentials_in_one_line(root: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    s3 = ["--dvc-remote-url", "s3://team-dvc/p", "--dvc-remote-endpoint", closed]
    init.main(["--repository", "churnops/churnops", *s3], root=root)
    env = {**GOOD, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    code, lines = run("cd-build", {**env, "GH_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": ""}, root)
    assert code == 1
    assert lines[0] == (
        "doctor: AWS_ACCESS_KEY_ID is not set, AWS_SECRET_ACCESS_KEY is empty: the DVC remote "
        "s3://team-dvc/p needs AWS credentials: assume its role with "
        "aws-actions/configure-aws-credentials (OIDC, docs/setup.md), or add the repository "
        "secrets DVC_REMOTE_READ_ACCESS_KEY_ID and DVC_REMOTE_READ_SECRET_ACCESS_KEY "
        "(Settings > Secrets and variables > Actions)"
    )
    assert (
        f"doctor: note: DVC remote 'storage' (s3://team-dvc/p at {closed}): not checked until "
        "its AWS credentials are set"
    ) in lines
    # With credentials the doctor asks the server itself (tests/e2e/test_data_remote_s3.py
    # has wrong and read-only ones against a real S3 server); here nothing listens.
    keys = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "GH_TOKEN": "t"}
    code, lines = run("cd-build", {**env, **keys}, root)
    assert code == 1
    assert lines[0].startswith(
        f"doctor: DVC remote 'storage' (s3://team-dvc/p at {closed}): unreachable ("
    )
    assert lines[0].endswith("): check dvc_remote_endpoint in churnops.yaml")
    assert lines[-1] == "doctor cd-build (.github/workflows/cd.yml job build): 1 to fix"


def test_identity_out_of_date_or_invalid(root: Path) -> None:
    overlay = root / "k8s/overlays/staging/kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("namespace: churnops-staging", "namespace: x"))
    code, lines = run("ci-test", {}, root)
    assert code == 1
    assert lines[0] == (
        "doctor: k8s/overlays/staging/kustomization.yaml: namespace is 'x', churnops.yaml says "
        "'churnops-staging': run `churnops init` and commit the result"
    )
    (root / "churnops.yaml").write_text("repository: x\n")
    code, lines = run("ci-test", {}, root)
    assert lines[0] == (
        "doctor: churnops.yaml: repository must be OWNER/NAME, got 'x': fix it (docs/setup.md), "
        "then `churnops init`"
    )


def test_docs_setup_has_a_row_per_job(repo_root: Path) -> None:
    text = (repo_root / "docs/setup.md").read_text()
    for name, job in doctor.JOBS.items():
        assert f"| `{name}` | `{job.workflow}` `{job.job}` |" in text, name
