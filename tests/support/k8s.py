"""Render and inspect the kustomize tree under k8s/ (no cluster needed: `kubectl kustomize`)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

K8S = Path("k8s")
KUBECTL = "/usr/bin/kubectl"


def overlay_dirs(repo_root: Path) -> list[Path]:
    """Every overlay: each folder of k8s/overlays/ with a kustomization.yaml."""
    return sorted(p.parent for p in (repo_root / K8S / "overlays").glob("*/kustomization.yaml"))


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize DIRECTORY` produces, as dicts."""
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of KIND (and NAME) among OBJECTS."""
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels-style SELECTOR selects an object with LABELS."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def kustomization(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def render_with_component(directory: Path, component: Path) -> list[dict[str, Any]]:
    """DIRECTORY rendered with COMPONENT listed last, as an overlay that enables it would."""
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    # kustomize takes only relative paths
                    "resources": [os.path.relpath(directory.resolve(), root)],
                    "components": [os.path.relpath(component.resolve(), root)],
                }
            )
        )
        return render(Path(root))


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions with In) selects LABELS."""
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions), expressions
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
        labels.get(e["key"]) in e["values"] for e in expressions
    )
