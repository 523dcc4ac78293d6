"""Stage `export`: convert the pipeline to ONNX, prove parity with sklearn, profile the data.

The candidate (model, reference profile, model card) is written to build/candidate/ only
after the parity check passes; the gate decides whether it becomes models/. Everything in
the candidate is reproducible: the gate adds the run's identity to the card. The profile
holds the training data's features and the ONNX model's probabilities on the test split
with their calibration (churnops.cbpe): the references of live monitoring.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnx
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.isotonic import IsotonicRegression
from sklearn.pipeline import Pipeline

from churnops import cbpe, drift, lineage, schema, tracking
from churnops.config import (
    CANDIDATE_DIR,
    CARD_FILE,
    EXPORT_REPORT,
    METRICS,
    MODEL_FILE,
    PIPELINE,
    PROFILE_FILE,
    TEST_SET,
    TRAIN_SET,
    load_params,
    read_json,
    write_json,
)
from churnops.predictor import Predictor

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def initial_types() -> list[tuple[str, Any]]:
    """One (n, 1) ONNX input per feature, typed from the schema."""
    return [
        (f.name, StringTensorType([None, 1]) if f.is_categorical else FloatTensorType([None, 1]))
        for f in schema.FEATURES
    ]


def to_onnx(pipeline: Pipeline, metadata: dict[str, str]) -> onnx.ModelProto:
    model = convert_sklearn(
        pipeline,
        initial_types=initial_types(),
        options={id(pipeline): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    # skl2onnx names the graph with a random UUID and lists opsets in set order (which
    # varies with PYTHONHASHSEED): fix both so the same pipeline gives the same bytes.
    model.graph.name = "churnops"
    opsets = sorted(model.opset_import, key=lambda opset: opset.domain)
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    model.doc_string = "churnops: probability that a customer churns"
    onnx.helper.set_model_props(model, metadata)
    return model


def parity(pipeline: Pipeline, predictor: Predictor, test: pd.DataFrame, threshold: float) -> dict:
    """Compare sklearn and onnxruntime on every test customer."""
    expected = pipeline.predict_proba(schema.features_frame(test))[:, 1]
    actual = predictor.churn_probability(schema.feature_columns(test))
    return {
        "rows": len(test),
        # Three significant digits: sklearn's float64 side moves in the last bits with the
        # CPU's BLAS kernel, and the report must not.
        "max_abs_diff": float(f"{np.max(np.abs(expected - actual)):.3g}"),
        "label_agreement": float(np.mean((expected >= threshold) == (actual >= threshold))),
    }


def model_card(
    params: dict[str, Any], metadata: dict[str, str], metrics: dict, check: dict
) -> dict:
    return {
        **metadata,
        "decision_threshold": params["evaluate"]["decision_threshold"],
        "metrics": {**metrics["test"], **metrics["fit"]}
        | {
            "demographic_parity_difference": metrics["fairness"]["demographic_parity_difference"],
            "equal_opportunity_difference": metrics["fairness"]["equal_opportunity_difference"],
        },
        "parity": check,
    }


def calibration_map(probability: np.ndarray, y_true: np.ndarray) -> Callable:
    """Raw probability -> observed churn rate: isotonic regression on held-out customers."""
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    return isotonic.fit(probability, y_true).predict


@dataclass(frozen=True)
class Candidate:
    """What export proposes to the gate: the ONNX bytes, the drift profile and the card."""

    model: bytes
    profile: dict[str, Any]
    card: dict[str, Any]


class ParityError(ValueError):
    """ONNX and sklearn disagree; `check` holds the measured parity."""

    def __init__(self, check: dict[str, Any], limit: float) -> None:
        super().__init__(
            f"ONNX and sklearn disagree on the test set: max probability difference "
            f"{check['max_abs_diff']:.2e} (limit {limit:.0e}), label agreement "
            f"{check['label_agreement']:.4%} (needs 100%). Choose an estimator that converts "
            "exactly, or fix the conversion; no candidate was written."
        )
        self.check = check


def export(
    pipeline: Pipeline,
    train: pd.DataFrame,
    test: pd.DataFrame,
    metrics: dict[str, Any],
    params: dict[str, Any],
    data_hash: str,
) -> Candidate:
    """The candidate for a trained pipeline, or ParityError if ONNX does not match sklearn.

    Only what determines the model goes inside it, so its bytes are reproducible; the
    run's identity (MLflow run, commit, time) is added to the card by the gate.
    """
    metadata = {
        "estimator": params["train"]["estimator"],
        "data_hash": data_hash,
        "params_hash": lineage.params_hash(params),
    }
    model = to_onnx(pipeline, metadata).SerializeToString()
    threshold = params["evaluate"]["decision_threshold"]
    predictor = Predictor(model)
    check = parity(pipeline, predictor, test, threshold)
    limit = params["export"]["parity_max_abs_diff"]
    if check["label_agreement"] < 1.0 or check["max_abs_diff"] > limit:
        raise ParityError(check, limit)
    profile = drift.build_profile(schema.feature_columns(train), params["export"]["reference_bins"])
    probability = predictor.churn_probability(schema.feature_columns(test))
    calibration = calibration_map(probability, schema.labels(test).to_numpy())
    profile[cbpe.PREDICTION] = cbpe.reference(probability, calibration, threshold)
    card = model_card(params, metadata, metrics, check)
    card["model_sha256"] = hashlib.sha256(model).hexdigest()
    return Candidate(model, profile, card)


def write_candidate(candidate: Candidate, directory: Path) -> None:
    """Replace `directory` with the candidate's three files."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MODEL_FILE).write_bytes(candidate.model)
    write_json(directory / PROFILE_FILE, candidate.profile)
    write_json(directory / CARD_FILE, candidate.card)


def main() -> None:
    params = load_params()
    try:
        candidate = export(
            joblib.load(PIPELINE),
            pd.read_parquet(TRAIN_SET),
            pd.read_parquet(TEST_SET),
            read_json(METRICS),
            params,
            lineage.data_hash(),
        )
    except ParityError as exc:
        write_json(EXPORT_REPORT, {"parity": exc.check})
        sys.exit(f"export: {exc}")
    check = candidate.card["parity"]
    write_json(EXPORT_REPORT, {"parity": check})
    write_candidate(candidate, CANDIDATE_DIR)
    try:
        with tracking.resume_training_run() as mlflow:
            mlflow.log_metrics({"parity.max_abs_diff": check["max_abs_diff"]})
            mlflow.set_tag("model_sha256", candidate.card["model_sha256"])
            mlflow.log_artifacts(str(CANDIDATE_DIR), artifact_path="candidate")
    except tracking.TrackingError as exc:
        sys.exit(f"export: {exc}")
    print(
        f"export: parity on {check['rows']} customers, max |diff| {check['max_abs_diff']:.2e}, "
        f"labels agree {check['label_agreement']:.2%}"
    )


if __name__ == "__main__":
    main()
