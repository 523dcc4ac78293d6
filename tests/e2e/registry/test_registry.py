"""`churnops register`, `promote` and `set-image` against a real `mlflow server`."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.e2e.registry.workspace import (
    churnops,
    clone,
    commit_all,
    digest,
    git,
    image_line,
    write_candidate,
)

CANDIDATES, RELEASED = "churnops-candidates", "churnops"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    return clone(repo_root, tmp_path_factory.mktemp("registry") / "churnops")


def alias(client: MlflowClient, name: str) -> str:
    model = RELEASED if name == "champion" else CANDIDATES
    return client.get_model_version_by_alias(model, name).version


def test_register_tags_lineage_and_sets_challenger(repo: Path, client: MlflowClient) -> None:
    card = write_candidate(repo, "v1", roc_auc=0.84)
    release = commit_all(repo, "model v1")
    done = churnops(repo, "register")
    assert done.returncode == 0, done.stderr
    assert "version 1 registered" in done.stdout
    version = client.get_model_version(CANDIDATES, "1")
    assert version.tags["model_sha256"] == card["model_sha256"]
    assert version.tags["data_hash"] == card["data_hash"]
    assert version.tags["params_hash"] == card["params_hash"]
    assert version.tags["git_commit"] == release
    assert version.tags["card_commit"] == release
    assert version.tags["gate_passed"] == "true"
    assert version.tags["metric.roc_auc"] == "0.84"
    assert "metric.diagnosis" not in version.tags
    assert alias(client, "challenger") == "1"
    # The card's run is not in this store: a new run carries the lineage and the model.
    run = client.get_run(version.run_id)
    assert run.data.tags["model_sha256"] == card["model_sha256"]
    assert run.data.metrics["roc_auc"] == pytest.approx(0.84)
    assert version.source.startswith("models:/")
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == version.run_id


def test_register_again_keeps_the_version_and_its_aliases(repo: Path, client: MlflowClient) -> None:
    done = churnops(repo, "register", "--image-digest", digest("img-v1"))
    assert done.returncode == 0, done.stderr
    assert "already churnops-candidates version 1" in done.stdout
    assert len(client.search_model_versions(f"name = '{CANDIDATES}'")) == 1
    assert client.get_model_version(CANDIDATES, "1").tags["image_digest"] == digest("img-v1")


def test_register_refuses_a_model_its_card_does_not_describe(
    repo: Path, client: MlflowClient
) -> None:
    model = repo / "models" / "model.onnx"
    original = model.read_bytes()
    model.write_bytes(original + b"\0")
    try:
        done = churnops(repo, "register")
    finally:
        model.write_bytes(original)
    assert done.returncode != 0
    assert "is not the model models/model_card.json describes" in done.stderr
    assert len(client.search_model_versions(f"name = '{CANDIDATES}'")) == 1


def test_promote_moves_champion_after_a_passed_gate(repo: Path, client: MlflowClient) -> None:
    done = churnops(repo, "promote")
    assert done.returncode == 0, done.stderr
    assert alias(client, "champion") == "1"
    released = client.get_model_version(RELEASED, "1")
    assert "promoted_at" in released.tags
    # The candidate was copied with its lineage; promoting it again copies nothing.
    assert released.source == f"models:/{CANDIDATES}/1"
    candidate = client.get_model_version(CANDIDATES, "1")
    assert {k: released.tags[k] for k in candidate.tags} == candidate.tags
    again = churnops(repo, "promote")
    assert again.returncode == 0, again.stderr
    assert len(client.search_model_versions(f"name = '{RELEASED}'")) == 1


def test_promote_refuses_a_failed_gate(repo: Path, client: MlflowClient) -> None:
    write_candidate(repo, "v2", roc_auc=0.70, passed=False)
    registered = churnops(repo, "register")
    assert "version 2 registered" in registered.stdout, registered.stderr
    version = client.get_model_version(CANDIDATES, "2")
    assert version.tags["gate_passed"] == "false"
    assert "card_commit" not in version.tags  # its pointers are not committed
    assert alias(client, "challenger") == "2"

    refused = churnops(repo, "promote")
    assert refused.returncode != 0
    assert "refusing to promote version 2: it failed the gate" in refused.stderr
    assert "roc_auc is 0.7000" in refused.stderr
    # Without reports/gate.json, the version's own tag still says no.
    (repo / "reports" / "gate.json").unlink()
    by_number = churnops(repo, "promote", "--version", "2")
    assert by_number.returncode != 0 and "failed the gate" in by_number.stderr
    missing = churnops(repo, "promote", "--version", "7")
    assert missing.returncode != 0 and "has no version '7'" in missing.stderr
    assert alias(client, "champion") == "1"


def test_register_logs_into_the_training_run_when_the_store_has_it(
    repo: Path, client: MlflowClient
) -> None:
    experiment = client.get_experiment_by_name("churnops") or client.get_experiment(
        client.create_experiment("churnops")
    )
    training = client.create_run(experiment.experiment_id)
    write_candidate(repo, "v3", roc_auc=0.85, run_id=training.info.run_id)
    done = churnops(repo, "register")
    assert "version 3 registered" in done.stdout, done.stderr
    assert client.get_model_version(CANDIDATES, "3").run_id == training.info.run_id


def test_set_image_edits_only_the_digest_line_and_tags_the_version(
    repo: Path, client: MlflowClient
) -> None:
    overlay = repo / "k8s" / "overlays" / "staging" / "kustomization.yaml"
    before = overlay.read_text().splitlines()
    done = churnops(
        repo,
        "set-image",
        "--overlay",
        "staging",
        "--digest",
        digest("img-v3"),
    )
    assert done.returncode == 0, done.stderr
    after = overlay.read_text().splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert len(changed) == 1
    assert changed[0][1] == changed[0][0].replace(
        changed[0][0].split("digest:")[1].strip(), digest("img-v3")
    )
    assert digest("img-v3") in image_line(repo, "staging")
    assert client.get_model_version(CANDIDATES, "3").tags["image_digest"] == digest("img-v3")
    assert git(repo, "diff", "--stat", "--", "k8s/overlays/production") == ""

    bad = churnops(repo, "set-image", "--overlay", "staging", "--digest", "sha256:abc", "--no-tag")
    assert bad.returncode != 0 and "is not an image digest" in bad.stderr
    absent = churnops(repo, "set-image", "--overlay", "qa", "--digest", digest("x"), "--no-tag")
    assert absent.returncode != 0 and "qa" in absent.stderr
