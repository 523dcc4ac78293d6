"""checkov on what each overlay deploys: no failed check but the documented skips.

checkov has its own venv (.venv-checkov, `make setup-gitops`): it pins old packages.
It scans the rendered overlays (what Argo CD applies; also with the optional
imagePullSecrets component) and the Argo CD objects, from inside their folder
with `-d .` (it silently scans nothing under a hidden path), offline. A deliberately weak
Deployment is scanned alongside, to prove the scan really checks something.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.k8s import K8S, overlay_dirs, render, render_with_component

CHECKOV = Path(".venv-checkov/bin/checkov")
# Each skip is an annotation on the object it concerns, with its reason (docs/gitops.md).
DOCUMENTED_SKIPS = {"CKV_K8S_40"}
WEAK_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "weak", "namespace": "control"},
    "spec": {
        "selector": {"matchLabels": {"app": "weak"}},
        "template": {
            "metadata": {"labels": {"app": "weak"}},
            "spec": {"containers": [{"name": "weak", "image": "busybox:latest"}]},
        },
    },
}


def checkov_results(repo_root: Path, folder: Path) -> dict[str, Any]:
    """checkov's results on FOLDER's YAML files, which must fail nothing but the weak control."""
    checkov = repo_root / CHECKOV
    assert checkov.exists(), "checkov is missing: run `make setup-gitops`"
    (folder / "control.yaml").write_text(yaml.safe_dump(WEAK_DEPLOYMENT))
    done = subprocess.run(
        [str(checkov), "-d", ".", "--framework", "kubernetes", "--skip-download", "-o", "json"],
        cwd=folder,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    results = json.loads(done.stdout)["results"]
    assert len(results["passed_checks"]) > 0
    failed = {(c["file_path"], c["check_id"]) for c in results["failed_checks"]}
    assert failed, "checkov found nothing wrong with the weak control Deployment"
    assert {path for path, _ in failed} == {"/control.yaml"}, sorted(failed)
    return results


def test_checkov_passes_every_overlay(repo_root, tmp_path):
    pull_secret = repo_root / K8S / "components" / "image-pull-secret"
    argo = {name: render(repo_root / K8S / name) for name in ("argocd", "platform")}
    rendered = dict(argo)
    for overlay in overlay_dirs(repo_root):
        rendered[overlay.name] = render(overlay)
        rendered[f"{overlay.name}-pull-secret"] = render_with_component(overlay, pull_secret)
    for name, objects in rendered.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(objects))
    results = checkov_results(repo_root, tmp_path)
    assert {c["check_id"] for c in results["skipped_checks"]} <= DOCUMENTED_SKIPS
    scanned = {c["file_path"] for c in results["passed_checks"]}
    # Applications get no Kubernetes checks; everything else must have been scanned.
    assert scanned >= {f"/{name}.yaml" for name in rendered if name not in argo}
