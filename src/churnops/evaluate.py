"""Stage `evaluate`: quality, fit diagnosis, fairness and plots for the trained pipeline."""

from __future__ import annotations

import sys
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.model_selection import learning_curve
from sklearn.pipeline import Pipeline

from churnops import schema, tracking
from churnops.config import (
    METRICS,
    PIPELINE,
    PLOTS_DIR,
    TEST_SET,
    TRAIN_SET,
    load_params,
    write_json,
)
from churnops.model import folds_from_params, pipeline_from_params
from churnops.quality import fairness, quality, rounded


def diagnose(train_auc: float, test_auc: float, overfit_gap: float, underfit_floor: float) -> dict:
    """Over/underfitting from the train-vs-test gap (the source paper's table of signs)."""
    gap = train_auc - test_auc
    if train_auc < underfit_floor and test_auc < underfit_floor:
        diagnosis = "underfitting"
        advice = "low score on both train and test: add features, capacity or less regularization"
    elif gap > overfit_gap:
        diagnosis = "overfitting"
        advice = "train far above test: regularize, simplify the model or add data"
    else:
        diagnosis = "good fit"
        advice = "train and test agree"
    return {"overfit_gap": rounded(gap), "diagnosis": diagnosis, "advice": advice}


def plot_data(
    y_true: np.ndarray, probability: np.ndarray, threshold: float
) -> dict[str, list[dict[str, Any]]]:
    """Rows for `dvc plots`: ROC, precision-recall, confusion matrix and calibration."""
    fpr, tpr, _ = skm.roc_curve(y_true, probability)
    precision, recall, _ = skm.precision_recall_curve(y_true, probability)
    observed, predicted_mean = calibration_curve(y_true, probability, n_bins=10)
    predicted = (probability >= threshold).astype(int)
    label = np.array(schema.TARGET_VALUES)
    return {
        "roc": [{"fpr": rounded(f), "tpr": rounded(t)} for f, t in zip(fpr, tpr, strict=True)],
        "precision_recall": [
            {"recall": rounded(r), "precision": rounded(p)}
            for r, p in zip(recall, precision, strict=True)
        ],
        "confusion": [
            {"actual": a, "predicted": p}
            for a, p in zip(label[y_true], label[predicted], strict=True)
        ],
        "calibration": [
            {"mean_predicted": rounded(m), "fraction_churned": rounded(o)}
            for m, o in zip(predicted_mean, observed, strict=True)
        ],
    }


def at_most(rows: int, limit: int, seed: int) -> np.ndarray:
    """Positions of a seeded sample of at most `limit` of `rows` rows, in row order."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


def learning_curve_rows(train: pd.DataFrame, params: dict[str, Any]) -> list[dict[str, float]]:
    """ROC AUC on growing shares of the training split: does more data still help?"""
    sizes, train_scores, valid_scores = learning_curve(
        pipeline_from_params(params),
        schema.features_frame(train),
        schema.labels(train),
        train_sizes=np.linspace(0.1, 1.0, params["evaluate"]["learning_curve_points"]),
        cv=folds_from_params(params),
        scoring="roc_auc",
    )
    return [
        {"train_rows": int(n), "train_roc_auc": rounded(t), "validation_roc_auc": rounded(v)}
        for n, t, v in zip(sizes, train_scores.mean(axis=1), valid_scores.mean(axis=1), strict=True)
    ]


def evaluate(
    pipeline: Pipeline, train: pd.DataFrame, test: pd.DataFrame, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """All evaluation results (metrics.json) and the rows behind the plots."""
    cfg = params["evaluate"]
    threshold = cfg["decision_threshold"]
    y_test = schema.labels(test).to_numpy()
    p_test = pipeline.predict_proba(schema.features_frame(test))[:, 1]
    p_train = pipeline.predict_proba(schema.features_frame(train))[:, 1]
    test_quality = quality(y_test, p_test, threshold)
    train_quality = quality(schema.labels(train).to_numpy(), p_train, threshold)
    fit = diagnose(
        train_quality["roc_auc"], test_quality["roc_auc"], cfg["overfit_gap"], cfg["underfit_floor"]
    )
    report = {
        "decision_threshold": threshold,
        "test": test_quality,
        "train": train_quality,
        "fit": fit,
        "fairness": fairness(test, y_test, (p_test >= threshold).astype(int)),
        "rows": {"train": len(train), "test": len(test)},
    }
    # Metrics use every row; the plots and the learning curve's refits a sample.
    limit, seed = cfg["diagnostic_rows"], params["base"]["seed"]
    shown = at_most(len(test), limit, seed)
    plots = plot_data(y_test[shown], p_test[shown], threshold)
    curve_rows = train.iloc[at_most(len(train), limit, seed)].reset_index(drop=True)
    plots["learning_curve"] = learning_curve_rows(curve_rows, params)
    return report, plots


def main() -> None:
    params = load_params()
    pipeline = joblib.load(PIPELINE)
    report, plots = evaluate(
        pipeline, pd.read_parquet(TRAIN_SET), pd.read_parquet(TEST_SET), params
    )
    write_json(METRICS, report)
    for name, rows in plots.items():
        write_json(PLOTS_DIR / f"{name}.json", rows)
    try:
        with tracking.resume_training_run() as mlflow:
            mlflow.log_metrics(tracking.flat_metrics(report))
            mlflow.set_tag("fit_diagnosis", report["fit"]["diagnosis"])
            mlflow.log_artifacts(str(PLOTS_DIR), artifact_path="plots")
    except tracking.TrackingError as exc:
        sys.exit(f"evaluate: {exc}")
    test = report["test"]
    print(
        f"evaluate: test ROC AUC {test['roc_auc']:.4f}, F1 {test['f1']:.4f}, "
        f"{report['fit']['diagnosis']} (gap {report['fit']['overfit_gap']:+.4f})"
    )


if __name__ == "__main__":
    main()
