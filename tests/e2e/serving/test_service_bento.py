"""The Bento as a container would run it: built, linted, exported, served away from the repo.

`churnops bento` builds into a temporary BENTOML_HOME; the Bento is exported with its
model (as `bentoml containerize` does) and served from a directory outside the repository
with an empty BENTOML_HOME and no CHURNOPS_MODEL_DIR, so it can only use what it carries.
That server then shows the drift metrics: held-out customers do not raise the flag, a
price rise with a shift to month-to-month contracts does.
"""

from __future__ import annotations

import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from churnops import lineage
from churnops.config import CARD_FILE, load_params, read_json
from tests.support.bento_server import BIN, Server, start_server, stop_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bento_dir(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported Bento, unpacked: what the image's build context holds."""
    home = tmp_path_factory.mktemp("bentoml-home")
    # The venv is not on PATH, as when `.venv/bin/churnops bento` is run without activating it.
    env = {"BENTOML_HOME": str(home), "PATH": "/usr/bin:/bin"}
    build = subprocess.run(
        [BIN / "churnops", "bento"], cwd=repo_root, env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr[-3000:]
    tag = build.stdout.strip().splitlines()[-1]
    archive = tmp_path_factory.mktemp("export") / "churnops.serving.bento"
    subprocess.run(
        [BIN / "bentoml", "export", tag, str(archive)], env=env, check=True, capture_output=True
    )
    unpacked = tmp_path_factory.mktemp("bento")
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    return unpacked


@pytest.fixture(scope="module")
def server(
    bento_dir: Path, tmp_path_factory: pytest.TempPathFactory, artifacts_dir: Path
) -> Iterator[Server]:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    running = start_server(
        str(bento_dir),
        artifacts_dir / "bentoml-serve-bento.log",
        cwd=elsewhere,
        env={"BENTOML_HOME": str(tmp_path_factory.mktemp("empty-home"))},
    )
    yield running
    stop_server(running)


def test_dockerfile_is_lean_non_root_and_clean_under_hadolint(bento_dir: Path) -> None:
    dockerfile = bento_dir / "env" / "docker" / "Dockerfile"
    text = dockerfile.read_text()
    assert "USER 1034:1034" in text
    assert "build-essential" not in text and "apt-get" not in text
    lint = subprocess.run([BIN / "hadolint", str(dockerfile)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_bento_carries_the_model_with_its_lineage(bento_dir: Path, repo_root: Path) -> None:
    card = read_json(repo_root / "models" / CARD_FILE)
    (model_yaml,) = (bento_dir / "models" / "churnops-model").glob("*/model.yaml")
    labels = yaml.safe_load(model_yaml.read_text())["labels"]
    assert labels["model_sha256"] == card["model_sha256"]
    assert labels["data_hash"] == card["data_hash"]
    assert labels["metric_roc_auc"] == f"{card['metrics']['roc_auc']:.6g}"
    bento = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    assert bento["labels"]["git_commit"] == lineage.git_commit()
    assert bento["args"] == load_params()["serve"]


def test_served_bento_says_what_it_serves(server: Server, repo_root: Path) -> None:
    metadata = server.client.get("/metadata").json()
    card = read_json(repo_root / "models" / CARD_FILE)
    assert metadata["model_sha256"] == card["model_sha256"]
    assert metadata["git_commit"] == lineage.git_commit()  # the Bento's label
    assert metadata["serve"] == load_params()["serve"]


def _send(server: Server, customers: list[dict]) -> None:
    for start in range(0, len(customers), 50):  # 50: the most one request adds to the window
        response = server.predict(customers[start : start + 50])
        assert response.status_code == 200, response.text


def _refresh_drift() -> None:
    """Each worker recomputes drift once a second: wait until every one has."""
    time.sleep(2.5)


def _shifted(customer: dict) -> dict:
    """The customer after a 60% price rise and a move to a month-to-month contract."""
    charges = {
        name: None if customer[name] is None else min(customer[name] * 1.6, 1000.0)
        for name in ("monthly_charges", "total_charges")
    }
    return {**customer, **charges, "contract": "Month-to-month"}


def test_drift_flag_stays_down_in_distribution_and_rises_on_a_shift(
    server: Server, test_customers: list[dict]
) -> None:
    serve = load_params()["serve"]
    threshold = serve["psi_threshold"]
    assert server.metric("churnops_drift_detected") == 0
    held_out = test_customers[100:700]
    _send(server, held_out)
    _refresh_drift()
    # The last drift_window customers of all workers, or more, to the refresh.
    assert serve["drift_window"] <= server.metric("churnops_drift_window_customers") <= 600
    assert server.metric("churnops_drift_detected") == 0
    calm = [server.metric("churnops_feature_drift_psi", feature=f) for f in held_out[0]]
    assert 0 < max(calm) < threshold

    shifted = [_shifted(c) for c in test_customers[700:1300]]
    _send(server, shifted)
    _refresh_drift()
    assert server.metric("churnops_drift_detected") == 1
    for feature in ("monthly_charges", "contract"):
        assert server.metric("churnops_feature_drift_psi", feature=feature) > threshold
    assert server.metric("churnops_feature_drift_psi", feature="female") < threshold


def test_the_bento_builds_from_a_checkout_under_a_hidden_folder(
    repo_root: Path, tmp_path: Path
) -> None:
    """A clone in ~/.cache/... : BentoML refuses hidden folders in a build context."""
    checkout = tmp_path / ".cache" / "churnops"
    subprocess.run(["git", "clone", "-q", str(repo_root), str(checkout)], check=True)
    for name in ("model.onnx", "reference_profile.json"):  # DVC outputs, not in a clone
        (checkout / "models" / name).write_bytes((repo_root / "models" / name).read_bytes())
    env = {
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "PATH": f"{BIN}:/usr/bin:/bin",
        "PYTHONPATH": str(checkout / "src"),
    }
    build = subprocess.run(
        [BIN / "churnops", "bento"], cwd=checkout, env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert build.stdout.strip().splitlines()[-1].startswith("churnops-service:")
