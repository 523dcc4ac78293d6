"""bentofile.yaml carries what serving imports, pinned as requirements.lock pins it."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pathspec
import yaml
from packaging.utils import canonicalize_name


def _bentofile(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "bentofile.yaml").read_text())


def test_python_packages_are_pinned_as_in_the_lock(repo_root: Path) -> None:
    locked = {
        canonicalize_name(name): version
        for name, version in re.findall(
            r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", (repo_root / "requirements.lock").read_text(), re.M
        )
    }
    for pin in _bentofile(repo_root)["python"]["packages"]:
        name, _, version = pin.partition("==")
        assert locked[canonicalize_name(name)] == version, f"{pin} differs from the lock"


def _include_spec(repo_root: Path) -> pathspec.PathSpec:
    """The bentofile's `include`, read as BentoML reads it (gitwildmatch patterns)."""
    with warnings.catch_warnings(category=DeprecationWarning, action="ignore"):
        return pathspec.PathSpec.from_lines("gitwildmatch", _bentofile(repo_root)["include"])


def test_bento_includes_every_churnops_module_the_service_imports(repo_root: Path) -> None:
    code = (
        "import sys, churnops.serving.service, churnops.retraining.trigger; "
        "print(' '.join(m.__file__ for n, m in sys.modules.items() if n.startswith('churnops')))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    included = _include_spec(repo_root).match_file
    for file in imported:
        path = Path(file).relative_to(repo_root / "src").as_posix()
        assert included(path), f"{path} is imported by the service but not in the Bento"
    assert not included("churnops/ui/app.py")  # the patterns do leave things out


def _pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", text, re.M)
    }


def test_the_bento_installs_a_hashed_lock_at_the_projects_versions(repo_root: Path) -> None:
    bento_lock = repo_root / "src/churnops/serving/bento.lock"
    pinned, locked = _pins(bento_lock), _pins(repo_root / "requirements.lock")
    wanted = {
        canonicalize_name(p.split("==")[0]) for p in _bentofile(repo_root)["python"]["packages"]
    }
    assert wanted | {"bentoml"} <= set(pinned)
    assert {name: locked.get(name) for name in pinned} == pinned  # the same versions
    entries = [line for line in bento_lock.read_text().splitlines() if "==" in line]
    assert all(line.endswith("\\") for line in entries)  # each followed by its hashes
    template = (repo_root / "bento/Dockerfile.template").read_text()
    assert "--require-hashes --no-deps" in template and "bento.lock" in template
