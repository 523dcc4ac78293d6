"""Where a model came from: commit, data version, params, time.

Everything here is derived from the repository's state, never from the clock, so the
same commit, data and params give the same model bytes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
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


def commit_time() -> str:
    """The commit's timestamp in UTC: the deterministic 'trained at' of a model."""
    epoch = _git("show", "-s", "--format=%ct", "HEAD")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.fromtimestamp(0, UTC)
    return moment.isoformat().replace("+00:00", "Z")


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
