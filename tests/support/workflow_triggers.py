"""Which of .github/workflows/ a push starts, by the `on:` filters GitHub documents.

- A push by GITHUB_TOKEN (`github-actions[bot]`) starts no workflow (it would loop), nor
  does one whose head commit's message says `[skip ci]` (or GitHub's other spellings).
- `push`: `branches` (globs) and `paths` / `paths-ignore` (globs, `**` across folders)
  against the files the push changed.
- `pull_request` (a push to a pull request's head branch: `synchronize`): `branches`
  against the base branch, and the same path filters.
"""

from __future__ import annotations

import subprocess
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

GITHUB_TOKEN_ACTOR = "github-actions[bot]"
SKIP = ("[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]")


def _on(workflow: dict[str, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    if isinstance(triggers, str):
        return {triggers: {}}
    if isinstance(triggers, list):
        return {name: {} for name in triggers}
    return {name: spec or {} for name, spec in triggers.items()}


def _paths_match(spec: dict[str, Any], changed: list[str]) -> bool:
    if "paths" in spec:
        return any(fnmatch(path, pattern) for path in changed for pattern in spec["paths"])
    if "paths-ignore" in spec:
        return not all(
            any(fnmatch(p, pattern) for pattern in spec["paths-ignore"]) for p in changed
        )
    return True


def changed_paths(git_dir: Path, old: str, new: str) -> list[str]:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "diff", "--name-only", old, new],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def started_by_push(
    workflows_dir: Path,
    pusher: str,
    branch: str,
    changed: list[str],
    base: str | None,
    message: str = "",
) -> list[tuple[str, str]]:
    """(workflow, event) for each run a push starts; `base` is set for a pull request's head."""
    if pusher == GITHUB_TOKEN_ACTOR or any(skip in message for skip in SKIP):
        return []
    runs = []
    for path in sorted(workflows_dir.glob("*.yml")):
        triggers = _on(yaml.safe_load(path.read_text()))
        for event, against in (("push", branch), ("pull_request", base)):
            spec = triggers.get(event)
            if spec is None or against is None:
                continue
            if any(fnmatch(against, b) for b in spec.get("branches", ["*"])) and _paths_match(
                spec, changed
            ):
                runs.append((path.stem, event))
    return runs
