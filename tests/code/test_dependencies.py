"""Every package churnops imports is declared in pyproject.toml, and pinned by the lock."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def imported_top_levels(src: Path) -> set[str]:
    names: set[str] = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"churnops", "__future__"}


def declared(repo_root: Path) -> set[str]:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}


def test_every_imported_package_is_a_declared_dependency(repo_root: Path) -> None:
    distributions = packages_distributions()
    undeclared = {
        name: distributions.get(name, ["?"])
        for name in imported_top_levels(repo_root / "src")
        if not {canonicalize_name(d) for d in distributions.get(name, [])} & declared(repo_root)
    }
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def test_every_declared_dependency_is_pinned_by_the_lock(repo_root: Path) -> None:
    locked = {
        canonicalize_name(line.split("==")[0])
        for line in (repo_root / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert declared(repo_root) <= locked


def test_every_locked_package_has_hashes_and_install_requires_them(repo_root: Path) -> None:
    lock = (repo_root / "requirements.lock").read_text()
    entries = [e for e in lock.split("\n") if e and not e.startswith((" ", "#"))]
    blocks = lock.split("\n")
    for entry in entries:
        following = blocks[blocks.index(entry) + 1]
        assert entry.endswith("\\") and following.strip().startswith("--hash=sha256:"), entry
    assert "--require-hashes -r requirements.lock" in (repo_root / "Makefile").read_text()
