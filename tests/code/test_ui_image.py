"""The UI's image recipe (ui/Containerfile): lint-clean, the Deployment's user, locked packages.

tests/e2e/test_container.py builds, pushes, pulls and runs it; these are the fast checks.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

CONTAINERFILE = Path("ui/Containerfile")
DEPLOYMENT = Path("k8s/components/ui/deployment.yaml")


def test_containerfile_is_clean_under_hadolint(repo_root: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    lint = subprocess.run([hadolint, repo_root / CONTAINERFILE], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_image_user_is_the_deployments_numeric_user(repo_root: Path) -> None:
    """runAsNonRoot can only be verified by the kubelet when the image's USER is numeric."""
    pod = yaml.safe_load((repo_root / DEPLOYMENT).read_text())["spec"]["template"]["spec"]
    security = pod["securityContext"]
    users = re.findall(r"^USER (\S+)$", (repo_root / CONTAINERFILE).read_text(), re.M)
    assert users == [f"{security['runAsUser']}:{security['runAsGroup']}"]


def test_every_package_the_ui_names_is_locked_with_hashes(repo_root: Path) -> None:
    wanted = {
        line.strip().lower()
        for line in (repo_root / "ui" / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    lock = (repo_root / "ui" / "requirements.lock").read_text()
    pinned = {name.lower() for name in re.findall(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    assert wanted <= pinned
    assert lock.count("--hash=sha256:") >= len(pinned)
