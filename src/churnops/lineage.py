"""Where a model came from: commit, data version, params."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from churnops.config import DATA_POINTER

# The params of the stages that make the model (split and train in dvc.yaml; a test
# checks the two lists agree). `evaluate`, `export`, `gate` and `serve` judge or describe
# the model and do not change it.
MODEL_PARAMS = ("base.seed", "split", "train")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def git_commit() -> str:
    """The commit the code was at (HEAD), or "unknown" outside a Git checkout."""
    return _git("rev-parse", "HEAD") or "unknown"


def data_hash(pointer: Path = DATA_POINTER) -> str:
    """DVC's hash of the data folder, as recorded in data.dvc: `dvc checkout` finds it."""
    if not pointer.exists():
        return "unknown"
    outs = yaml.safe_load(pointer.read_text()).get("outs", [])
    return outs[0].get("md5", "unknown") if outs else "unknown"


def model_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params the trained model depends on: those of `split` and `train` in dvc.yaml."""
    picked: dict[str, Any] = {}
    for dotted in MODEL_PARAMS:
        group, _, key = dotted.partition(".")
        if key:
            picked.setdefault(group, {})[key] = params[group][key]
        else:
            picked[group] = params[group]
    return picked


def params_hash(params: dict[str, Any]) -> str:
    """A short hash of the params the model depends on; other groups leave it alone."""
    canonical = json.dumps(model_params(params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned(*packages: str) -> list[str]:
    """`package==version` as installed (from requirements.lock), for MLflow's model files."""
    return [f"{package}=={metadata.version(package)}" for package in packages]
