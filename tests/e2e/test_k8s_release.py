"""The release steps CD runs, as make targets, against real Git and a real HTTP server.

`make release` commits an image digest to an overlay and pushes it to main of a real
(local, bare) Git remote, rebasing over a concurrent push. `make verify-release` polls a
real HTTP server on loopback standing in for the staging Service (no cluster here): it
passes only once /metadata names the released image and /readyz answers 200.
What is mocked: the MLflow tag (`--no-tag`; the registry engineer's tests cover it),
GitHub and the cluster.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.net import free_port, wait_until

OLD = "sha256:" + "0" * 64
NEW = "sha256:" + "ab" * 32
IMAGE_REPO = "ghcr.io/churnops/churnops-service"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def make(cwd: Path, repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", *args, f"VENV={repo_root / '.venv'}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def clone(repo_root: Path, tmp_path: Path) -> Path:
    """A clone of a bare 'origin' holding the Makefile, mk/gitops.mk and the overlays."""
    seed = tmp_path / "seed"
    (seed / "mk").mkdir(parents=True)
    shutil.copy(repo_root / "Makefile", seed)
    shutil.copy(repo_root / "mk" / "gitops.mk", seed / "mk")
    for overlay in ("staging", "production"):
        target = seed / "k8s" / "overlays" / overlay
        target.mkdir(parents=True)
        text = (repo_root / "k8s/overlays" / overlay / "kustomization.yaml").read_text()
        (target / "kustomization.yaml").write_text(text.replace(current(text), OLD))
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", ".")
    git(seed, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "seed")
    git(tmp_path, "clone", "-q", "--bare", str(seed), "origin.git")
    git(tmp_path, "clone", "-q", "origin.git", "work")
    return tmp_path / "work"


def current(text: str) -> str:
    """The service image's digest in an overlay's kustomization.yaml."""
    (entry,) = [i for i in yaml.safe_load(text)["images"] if i["name"] == "churnops-service"]
    return entry["digest"]


def test_card_commits_the_digest_and_pushes_over_a_concurrent_release(clone, repo_root):
    # Someone else's release lands on origin first: ours must rebase over it, not fail.
    other = clone.parent / "other"
    git(clone.parent, "clone", "-q", "origin.git", "other")
    production = other / "k8s/overlays/production/kustomization.yaml"
    production.write_text(production.read_text().replace(OLD, NEW))
    git(other, "-c", "user.name=o", "-c", "user.email=o@o", "commit", "-qam", "other release")
    git(other, "push", "-q", "origin", "HEAD:main")

    done = make(
        clone, repo_root, "release", "OVERLAY=staging", f"DIGEST={NEW}", "SET_IMAGE_FLAGS=--no-tag"
    )
    assert done.returncode == 0, done.stdout + done.stderr

    git(other, "pull", "-q", "origin", "main")
    head = git(other, "log", "-1", "--format=%an|%s")
    assert head == f"churnops-bot|release(staging): {NEW}"
    diff = git(other, "show", "--format=", "--unified=0", "HEAD")
    changed = [
        line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [f"-    digest: {OLD}", f"+    digest: {NEW}"]
    assert git(other, "log", "--format=%s", "-3").splitlines() == [
        f"release(staging): {NEW}",
        "other release",
        "seed",
    ]


def test_release_with_the_ui_digest_moves_both_lines_in_one_commit(clone, repo_root):
    ui = "sha256:" + "cd" * 32
    done = make(
        clone,
        repo_root,
        "release",
        "OVERLAY=staging",
        f"DIGEST={NEW}",
        f"UI_DIGEST={ui}",
        "SET_IMAGE_FLAGS=--no-tag",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    diff = git(clone.parent / "origin.git", "show", "--format=", "--unified=0", "main")
    added = [line for line in diff.splitlines() if line.startswith("+ ")]
    assert added == [f"+    digest: {NEW}", f"+    digest: {ui}"]
    assert "k8s/overlays/production" not in diff


def test_release_of_the_deployed_digest_changes_nothing(clone, repo_root):
    before = git(clone, "rev-parse", "HEAD")
    done = make(
        clone, repo_root, "release", "OVERLAY=staging", f"DIGEST={OLD}", "SET_IMAGE_FLAGS=--no-tag"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(clone.parent / "origin.git", "rev-parse", "main") == before


def test_release_refuses_a_malformed_digest(clone, repo_root):
    done = make(
        clone,
        repo_root,
        "release",
        "OVERLAY=staging",
        "DIGEST=sha256:abc",
        "SET_IMAGE_FLAGS=--no-tag",
    )
    assert done.returncode != 0
    assert "not an image digest" in done.stderr


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[Path]:
    """A static HTTP server on loopback standing in for the staging Service; yields its root."""
    root = tmp_path / "www"
    root.mkdir()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (root / "port").write_text(str(port))
    try:
        wait_until(lambda: _get(port, "/port") == str(port), 10, "the stand-in server")
        yield root
    finally:
        server.terminate()
        server.wait(timeout=10)


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return response.read().decode()


def verify(repo_root: Path, root: Path, digest: str) -> subprocess.CompletedProcess[str]:
    url = f"http://127.0.0.1:{(root / 'port').read_text()}"
    return make(
        repo_root, repo_root, "verify-release", f"URL={url}", f"DIGEST={digest}",
        "VERIFY_ATTEMPTS=2", "VERIFY_DELAY=0",
    )  # fmt: skip


def test_verify_release_waits_for_the_released_image(staging, repo_root):
    (staging / "metadata").write_text(json.dumps({"image": f"{IMAGE_REPO}@{OLD}"}))
    (staging / "readyz").write_text("ok")
    old_still_served = verify(repo_root, staging, NEW)
    assert old_still_served.returncode != 0
    assert f"never served {NEW}" in old_still_served.stderr

    (staging / "metadata").write_text(json.dumps({"image": f"{IMAGE_REPO}@{NEW}"}))
    assert verify(repo_root, staging, NEW).returncode == 0

    (staging / "readyz").unlink()
    assert verify(repo_root, staging, NEW).returncode != 0
