"""Where a model came from: commit, data version, params."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from churnops.config import DATA_POINTER


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


def params_hash(params: dict[str, Any]) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
