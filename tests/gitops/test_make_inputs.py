"""What a caller passes to a make target (VERSION=, DIGEST=, ...) is data, never shell code."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

INPUTS = (
    *("VERSION", "DIGEST", "OVERLAY", "URL", "IMAGE"),
    *("SOURCE", "SCENARIO", "DATE", "BASE", "REPORT_DIR"),
)


def recipe_lines(repo_root: Path) -> list[tuple[str, str]]:
    files = [repo_root / "Makefile", *sorted((repo_root / "mk").glob("*.mk"))]
    return [
        (path.name, line)
        for path in files
        for line in path.read_text().splitlines()
        if line.startswith("\t")
    ]


def test_no_recipe_pastes_a_callers_input_into_its_command(repo_root: Path) -> None:
    pasted = re.compile(r"\$[({](" + "|".join(INPUTS) + r")[)}]")
    offending = [
        f"{name}: {line.strip()}" for name, line in recipe_lines(repo_root) if pasted.search(line)
    ]
    assert not offending, "\n".join(offending)


def test_the_check_finds_a_pasted_input() -> None:
    assert re.search(r"\$[({](VERSION)[)}]", '\tchurnops rollback --to "$(VERSION)"')


def test_a_hostile_rollback_version_is_refused_as_a_version_not_run(
    repo_root: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile = f"1`touch {marker}`"
    done = subprocess.run(
        ["make", "--no-print-directory", "rollback", f"VERSION={hostile}"],
        cwd=repo_root,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert not marker.exists(), "the version was run as shell code"
    assert "rollback:" in done.stderr and "no version" in done.stderr, done.stderr[-2000:]
