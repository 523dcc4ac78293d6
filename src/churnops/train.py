"""Stage `train`: fit the pipeline, cross-validate it, and track the run in MLflow."""

from __future__ import annotations

import sys
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from churnops import lineage, schema, tracking
from churnops.config import PIPELINE, TRAIN_REPORT, TRAIN_SET, load_params, write_json
from churnops.model import (
    at_served_precision,
    folds_from_params,
    hyperparams_of,
    pipeline_from_params,
)

CV_SCORING = ("roc_auc", "average_precision", "f1", "neg_log_loss")


def fit(train: pd.DataFrame, params: dict[str, Any]) -> tuple[Pipeline, dict[str, Any]]:
    """Cross-validate then fit on the whole training split; returns the model and CV scores."""
    X, y = schema.features_frame(train), schema.labels(train)
    scores = cross_validate(
        pipeline_from_params(params),
        X,
        y,
        cv=folds_from_params(params),
        scoring=CV_SCORING,
        error_score="raise",
    )
    cv = {
        name.removeprefix("neg_"): {
            "mean": round(float(abs(np.mean(scores[f"test_{name}"]))), 6),
            "std": round(float(np.std(scores[f"test_{name}"])), 6),
        }
        for name in CV_SCORING
    }
    pipeline = at_served_precision(pipeline_from_params(params).fit(X, y))
    report = {"estimator": params["train"]["estimator"], "hyperparams": hyperparams_of(params)}
    return pipeline, report | {"cv": cv}


def track(pipeline: Pipeline, report: dict[str, Any], params: dict[str, Any], rows: int) -> str:
    """Record the run in MLflow (params, CV metrics, lineage, the sklearn model); its id.

    The run is tagged with the sha256 of build/pipeline.joblib, by which later stages find it.
    """
    mlflow = tracking.configure()
    commit = lineage.git_commit()
    with mlflow.start_run() as run:
        mlflow.log_params({"estimator": report["estimator"], **report["hyperparams"]})
        mlflow.log_params({"cv_folds": params["train"]["cv_folds"], "seed": params["base"]["seed"]})
        mlflow.log_metrics(tracking.flat_metrics(report["cv"], "cv."))
        mlflow.set_tags(
            {
                "git_commit": commit,
                "data_hash": lineage.data_hash(),
                "params_hash": lineage.params_hash(params),
                "train_rows": rows,
                tracking.PIPELINE_TAG: lineage.file_sha256(PIPELINE),
            }
        )
        mlflow.sklearn.log_model(
            pipeline,
            name="sklearn-pipeline",
            serialization_format="cloudpickle",
            pip_requirements=lineage.pinned("scikit-learn", "pandas", "cloudpickle"),
        )
        return run.info.run_id


def main() -> None:
    params = load_params()
    train = pd.read_parquet(TRAIN_SET)
    try:
        pipeline, report = fit(train, params)
    except InvalidParameterError as exc:
        estimator = params["train"]["estimator"]
        sys.exit(f"train: params.yaml train.hyperparams.{estimator} is invalid: {exc}")
    joblib.dump(pipeline, PIPELINE)
    write_json(TRAIN_REPORT, report)
    try:
        run_id = track(pipeline, report, params, len(train))
    except tracking.TrackingError as exc:
        sys.exit(f"train: {exc}")
    print(f"train: {report['estimator']}, CV ROC AUC {report['cv']['roc_auc']['mean']:.4f}")
    print(f"train: MLflow run {run_id}")


if __name__ == "__main__":
    main()
