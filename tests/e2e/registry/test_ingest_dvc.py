"""`churnops ingest` as CT runs it: a snapshot recorded by real `dvc add`, rebuilt byte for byte.

The rebuild is how a machine without the DVC remote gets the synthetic snapshots back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from churnops import schema
from churnops.snapshots import base_snapshot, write_snapshot


def ingest(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnops.intake.ingest", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def dvc(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_cli_records_the_snapshot_in_dvc_and_rebuilds_it_byte_for_byte(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    dvc(repo, "init", "--no-scm", "-q")
    write_snapshot(base_snapshot(), repo / "data" / "2026-11-01.csv")
    dvc(repo, "add", "-q", "data")

    done = ingest(repo, "--date", "2026-11-28", "--scenario", "price_rise", "--rows", "200")
    assert done.returncode == 0, done.stderr
    snapshot = repo / "data" / "2026-11-28.csv"
    first = snapshot.read_bytes()
    assert pd.read_csv(snapshot).shape == (200, len(schema.COLUMNS))
    pointer = yaml.safe_load((repo / "data.dvc").read_text())
    assert pointer["outs"][0]["nfiles"] == 2
    assert pointer["meta"]["snapshots"]["2026-11-28.csv"] == {
        "source": "synthetic",
        "scenario": "price_rise",
        "rows": 200,
    }

    # A machine without the DVC remote: the snapshots are gone and rebuilt from data.dvc.
    for path in (repo / "data").iterdir():
        path.unlink()
    rebuilt = ingest(repo, "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert snapshot.read_bytes() == first
    assert "changed" not in dvc(repo, "status", "data.dvc")
