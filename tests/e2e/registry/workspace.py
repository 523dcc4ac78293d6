"""A temporary clone of the repository where registry, rollback and report run for real.

The clone holds small stand-in models: a valid ONNX file whose bytes differ per version,
with a model card and a gate report like the pipeline writes (the trained model is a
DVC output, absent from a fresh clone, and the registry only needs distinct models).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onnx import TensorProto, helper

from churnops import cli
from churnops.config import write_json

VENV_BIN = str(Path(sys.executable).parent)
OVERLAYS = ("staging", "production")
MINIMAL_OVERLAY = """\
# A stand-in overlay (the real ones were not committed yet when this clone was made).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
images:
  - name: churnops-service  # the release line is below
    newName: ghcr.io/churnops/churnops-service
    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
"""


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def clone(repo_root: Path, dest: Path) -> Path:
    """A clone of the committed repository with an identity to commit as, and overlays."""
    subprocess.run(["git", "clone", "--quiet", str(repo_root), str(dest)], check=True)
    git(dest, "config", "user.name", "churnops tests")
    git(dest, "config", "user.email", "tests@churnops.invalid")
    for name in OVERLAYS:
        target = dest / "k8s" / "overlays" / name / "kustomization.yaml"
        if target.exists():
            continue
        source = repo_root / "k8s" / "overlays" / name / "kustomization.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.exists():
            shutil.copyfile(source, target)
        else:
            target.write_text(MINIMAL_OVERLAY)
    return dest


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def churnops(repo: Path, *args: str) -> Outcome:
    """`churnops ARGS` in the clone, in this process (importing MLflow once keeps it fast).

    Like the console script: exit status 1 and the message on stderr for `sys.exit(msg)`.
    """
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.chdir(repo), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(list(args))
        except SystemExit as exc:
            if isinstance(exc.code, str):
                print(exc.code, file=err)
                code = 1
            else:
                code = exc.code or 0
    return Outcome(code, out.getvalue(), err.getvalue())


def churnops_process(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`churnops ARGS` as its own process in the clone, as a workflow step runs it."""
    return subprocess.run(
        [str(Path(VENV_BIN) / "churnops"), *args],
        cwd=repo,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def tiny_onnx(label: str) -> bytes:
    """A valid ONNX model (y = x) whose bytes depend on the label."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "churn", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"label": label})
    return model.SerializeToString()


def write_candidate(
    repo: Path,
    label: str,
    roc_auc: float,
    passed: bool = True,
    run_id: str = "run-from-a-ci-runner",
) -> dict[str, Any]:
    """models/ and reports/ as the pipeline leaves them after a gate; the model card."""
    model = tiny_onnx(label)
    (repo / "models").mkdir(exist_ok=True)
    (repo / "models" / "model.onnx").write_bytes(model)
    sha = hashlib.sha256(model).hexdigest()
    card = {
        "data_hash": hashlib.md5(f"data-{label}".encode()).hexdigest() + ".dir",
        "decision_threshold": 0.5,
        "estimator": "logistic_regression",
        "metrics": {"roc_auc": roc_auc, "f1": 0.6, "diagnosis": "good fit"},
        "model_sha256": sha,
        "params_hash": hashlib.sha256(label.encode()).hexdigest()[:16],
        "mlflow_run_id": run_id,
        "trained_from_commit": git(repo, "rev-parse", "HEAD"),
    }
    write_json(repo / "models" / "model_card.json", card)
    rule = {
        "rule": "roc_auc >= 0.83",
        "value": roc_auc,
        "passed": passed,
        "reason": f"{'ok' if passed else 'FAILED'}: roc_auc is {roc_auc:.4f}, must be >= 0.8300",
    }
    write_json(
        repo / "reports" / "gate.json",
        {"passed": passed, "candidate": sha, "champion": None, "rules": [rule]},
    )
    write_json(repo / "reports" / "metrics.json", {"test": {"roc_auc": roc_auc}})
    # The data pointer and the pipeline record move with each model, as after `dvc repro`.
    pointer = {"outs": [{"md5": card["data_hash"], "nfiles": 1, "hash": "md5", "path": "data"}]}
    (repo / "data.dvc").write_text(json.dumps(pointer) + "\n")
    (repo / "dvc.lock").write_text(f"schema: '2.0'\n# model {label}\nstages: {{}}\n")
    return card


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "--all", "--", "data.dvc", "dvc.lock", "models", "reports", "k8s")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def image_line(repo: Path, overlay: str) -> str:
    text = (repo / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text()
    return next(line for line in text.splitlines() if "digest:" in line)
