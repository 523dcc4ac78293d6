"""Stage `export`: convert the pipeline to ONNX, prove parity with sklearn, profile the data.

The candidate (model, reference profile, model card) is written to build/candidate/ only
after the parity check passes; the gate decides whether it becomes models/. Everything in
the candidate is reproducible: the run's identity is added by the gate on release.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnx
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from churnops import drift, lineage, schema, tracking
from churnops.config import (
    CANDIDATE_DIR,
    CARD_FILE,
    EXPORT_REPORT,
    METRICS,
    MODEL_FILE,
    PIPELINE,
    PROFILE_FILE,
    RUN_INFO,
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
    features = schema.features_frame(test)
    expected = pipeline.predict_proba(features)[:, 1]
    columns = {name: features[name].tolist() for name in schema.FEATURE_NAMES}
    actual = predictor.churn_probability(columns)
    return {
        "rows": len(test),
        "max_abs_diff": float(np.max(np.abs(expected - actual))),
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


def main() -> None:
    params = load_params()
    pipeline = joblib.load(PIPELINE)
    estimator = params["train"]["estimator"]
    # Only what determines the model goes inside it, so its bytes are reproducible; the
    # run's identity (MLflow run, commit, time) goes in the model card beside it.
    metadata = {
        "estimator": estimator,
        "data_hash": lineage.data_hash(),
        "params_hash": lineage.params_hash(params),
    }
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / MODEL_FILE
        onnx.save_model(to_onnx(pipeline, metadata), staged)
        threshold = params["evaluate"]["decision_threshold"]
        check = parity(pipeline, Predictor(staged), pd.read_parquet(TEST_SET), threshold)
        write_json(EXPORT_REPORT, {"parity": check})
        limit = params["export"]["parity_max_abs_diff"]
        if check["label_agreement"] < 1.0 or check["max_abs_diff"] > limit:
            sys.exit(
                f"export: ONNX and sklearn disagree on the test set: max probability difference "
                f"{check['max_abs_diff']:.2e} (limit {limit:.0e}), label agreement "
                f"{check['label_agreement']:.4%} (needs 100%). Choose an estimator that converts "
                "exactly, or fix the conversion; no candidate was written."
            )
        if CANDIDATE_DIR.exists():
            shutil.rmtree(CANDIDATE_DIR)
        CANDIDATE_DIR.mkdir(parents=True)
        shutil.copyfile(staged, CANDIDATE_DIR / MODEL_FILE)
    train = pd.read_parquet(TRAIN_SET)
    columns = {name: train[name].tolist() for name in schema.FEATURE_NAMES}
    write_json(
        CANDIDATE_DIR / PROFILE_FILE,
        drift.build_profile(columns, params["export"]["reference_bins"]),
    )
    card = model_card(params, metadata, read_json(METRICS), check)
    card["model_sha256"] = lineage.file_sha256(CANDIDATE_DIR / MODEL_FILE)
    write_json(CANDIDATE_DIR / CARD_FILE, card)
    with tracking.resume(read_json(RUN_INFO)["mlflow_run_id"]) as mlflow:
        mlflow.log_metrics({"parity.max_abs_diff": check["max_abs_diff"]})
        mlflow.set_tag("model_sha256", card["model_sha256"])
        mlflow.log_artifacts(str(CANDIDATE_DIR), artifact_path="candidate")
    print(
        f"export: parity on {check['rows']} customers, max |diff| {check['max_abs_diff']:.2e}, "
        f"labels agree {check['label_agreement']:.2%}"
    )


if __name__ == "__main__":
    main()
