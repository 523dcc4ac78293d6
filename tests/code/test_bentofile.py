"""bentofile.yaml carries what serving imports, pinned as requirements.lock pins it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def _bentofile(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "bentofile.yaml").read_text())


def test_python_packages_are_pinned_as_in_the_lock(repo_root: Path) -> None:
    locked = {
        line.split("==")[0].lower().replace("_", "-"): line.strip()
        for line in (repo_root / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    for pin in _bentofile(repo_root)["python"]["packages"]:
        name = pin.split("==")[0].lower().replace("_", "-")
        assert locked[name].lower() == pin.lower(), f"{pin} differs from the lock"


def test_bento_includes_every_churnops_module_the_service_imports(repo_root: Path) -> None:
    code = (
        "import sys, churnops.service; "
        "print(' '.join(m for m in sys.modules if m.startswith('churnops')))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    included = set(_bentofile(repo_root)["include"])
    for module in imported:
        path = module.replace(".", "/") + ".py"
        if module == "churnops":
            path = "churnops/__init__.py"
        assert path in included, f"{module} is imported by the service but not in the Bento"
