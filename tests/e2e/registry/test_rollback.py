"""`churnops rollback --to VERSION`: model, image and data back together, in one commit.

Two releases go through register, set-image (as CD does after pushing an image) and
promote in a temporary clone, against a real `mlflow server`; then version 1 comes back.
Only the container registry and the cluster are absent: digests stand for pushed images.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.e2e.registry.workspace import (
    OVERLAYS,
    churnops,
    churnops_process,
    clone,
    commit_all,
    digest,
    git,
    image_line,
    write_candidate,
)

MODEL = "churnops"
RESTORED = [
    "data.dvc",
    "dvc.lock",
    "models/model_card.json",
    "reports/gate.json",
    "reports/metrics.json",
]


def release(repo: Path, label: str, roc_auc: float) -> str:
    """What CT and CD do for one model: commit, register, ship the image, promote."""
    write_candidate(repo, label, roc_auc)
    commit = commit_all(repo, f"model {label}")
    assert churnops(repo, "register").returncode == 0
    for overlay in OVERLAYS:
        done = churnops(repo, "set-image", "--overlay", overlay, "--digest", digest(f"img-{label}"))
        assert done.returncode == 0, done.stderr
    commit_all(repo, f"deploy image of {label}")
    assert churnops(repo, "promote").returncode == 0
    return commit


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, repo_root: Path, client: MlflowClient) -> Path:
    path = clone(repo_root, tmp_path_factory.mktemp("rollback") / "churnops")
    release(path, "v1", 0.84)
    release(path, "v2", 0.85)
    assert client.get_model_version_by_alias(MODEL, "champion").version == "2"
    return path


def show(repo: Path, commit: str, path: str) -> str:
    return git(repo, "show", f"{commit}:{path}")


def test_rollback_restores_image_data_and_model_in_one_commit(
    repo: Path, client: MlflowClient
) -> None:
    v1_commit = client.get_model_version(MODEL, "1").tags["card_commit"]
    before = git(repo, "rev-parse", "HEAD")
    done = churnops_process(repo, "rollback", "--to", "1")
    assert done.returncode == 0, done.stderr
    assert git(repo, "rev-parse", "HEAD~1") == before
    assert git(repo, "log", "-1", "--format=%s") == "Roll back to churnops model version 1"
    changed = git(repo, "diff", "--name-only", "HEAD~1", "HEAD").splitlines()
    overlays = [f"k8s/overlays/{name}/kustomization.yaml" for name in OVERLAYS]
    assert sorted(changed) == sorted([*RESTORED, *overlays])
    for path in RESTORED:
        assert show(repo, "HEAD", path) == show(repo, v1_commit, path), path
    for name, path in zip(OVERLAYS, overlays, strict=True):
        assert digest("img-v1") in image_line(repo, name)
        diff = git(repo, "diff", "--unified=0", "HEAD~1", "HEAD", "--", path).splitlines()
        edits = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        assert len(edits) == 2 and all("digest:" in line for line in edits), diff
    assert git(repo, "status", "--porcelain") == ""
    # The alias waits for the push (make rollback runs --move-champion after it).
    assert client.get_model_version_by_alias(MODEL, "champion").version != "1"
    moved = churnops_process(repo, "rollback", "--to", "1", "--move-champion")
    assert moved.returncode == 0, moved.stderr
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"


def test_rollback_refuses_what_it_cannot_restore_and_changes_nothing(
    repo: Path, client: MlflowClient
) -> None:
    head = git(repo, "rev-parse", "HEAD")

    missing = churnops(repo, "rollback", "--to", "42")
    assert missing.returncode != 0 and "has no version '42'" in missing.stderr

    # A candidate is not a release: only what promote copied can be rolled back to.
    write_candidate(repo, "v3", 0.86)
    commit_all(repo, "model v3")
    assert churnops(repo, "register").returncode == 0
    head = git(repo, "rev-parse", "HEAD")
    candidate = churnops(repo, "rollback", "--to", "3")
    assert candidate.returncode != 0 and "churnops has no version '3'" in candidate.stderr

    # Released, but never built into an image.
    assert churnops(repo, "promote").returncode == 0
    no_image = churnops(repo, "rollback", "--to", "3")
    assert no_image.returncode != 0 and "no image_digest tag" in no_image.stderr

    # A release whose pointers were never committed has nothing to restore from.
    write_candidate(repo, "v4", 0.87)
    assert churnops(repo, "register").returncode == 0
    assert churnops(repo, "promote").returncode == 0
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    uncommitted = churnops(repo, "rollback", "--to", "4")
    assert uncommitted.returncode != 0 and "no card_commit" in uncommitted.stderr

    # Local edits to the files a rollback rewrites are never overwritten.
    dirty = churnops(repo, "rollback", "--to", "2")
    assert dirty.returncode != 0 and "uncommitted changes would be overwritten" in dirty.stderr
    assert "data.dvc" in dirty.stderr

    assert git(repo, "rev-parse", "HEAD") == head
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion
