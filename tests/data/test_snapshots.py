"""The real data: it passes the suite, and the base snapshot rebuilds byte for byte."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from churnops import snapshots, validate
from churnops.config import load_params


def test_real_data_passes_every_expectation(repo_root: Path, monkeypatch) -> None:
    monkeypatch.chdir(repo_root)
    params = load_params()["validate"]
    raw = snapshots.read_snapshots()
    assert len(raw) >= 7043
    assert validate.check(raw, params["min_rows"], params["max_null_fraction"]) == []


def test_base_snapshot_rebuilds_byte_identically(repo_root: Path, tmp_path: Path) -> None:
    rebuilt = tmp_path / snapshots.BASE_SNAPSHOT
    snapshots.write_snapshot(snapshots.base_snapshot(), rebuilt)
    assert rebuilt.read_bytes() == (repo_root / "data" / snapshots.BASE_SNAPSHOT).read_bytes()


def test_data_folder_matches_data_dvc(repo_root: Path) -> None:
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "data.dvc", "--json"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout.strip() == "{}"
