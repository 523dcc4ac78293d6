"""Paths of the pipeline's files and access to params.yaml.

Paths are relative to the repository root, where DVC runs every stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")
DATA_DIR = Path("data")
DATA_POINTER = Path("data.dvc")

BUILD_DIR = Path("build")
DATASET = BUILD_DIR / "dataset.parquet"
TRAIN_SET = BUILD_DIR / "train.parquet"
TEST_SET = BUILD_DIR / "test.parquet"
PIPELINE = BUILD_DIR / "pipeline.joblib"
CANDIDATE_DIR = BUILD_DIR / "candidate"

DVC_LOCK = Path("dvc.lock")

MODELS_DIR = Path("models")
MODEL_FILE = "model.onnx"
PROFILE_FILE = "reference_profile.json"
CARD_FILE = "model_card.json"

REPORTS_DIR = Path("reports")
VALIDATION_REPORT = REPORTS_DIR / "validation.json"
TRAIN_REPORT = REPORTS_DIR / "train.json"
METRICS = REPORTS_DIR / "metrics.json"
PLOTS_DIR = REPORTS_DIR / "plots"
EXPORT_REPORT = REPORTS_DIR / "export.json"
GATE_REPORT = REPORTS_DIR / "gate.json"

# split.holdout: the test set is a random share of all rows, or the newest snapshot.
RANDOM = "random"
NEWEST_SNAPSHOT = "newest_snapshot"
HOLDOUTS = (RANDOM, NEWEST_SNAPSHOT)


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    with path.open() as f:
        return yaml.safe_load(f)


def read_json(path: Path) -> Any:
    with path.open() as f:
        return json.load(f)


def write_json(path: Path, payload: Any) -> None:
    """Write JSON deterministically (sorted keys, fixed indent) so outputs diff cleanly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
