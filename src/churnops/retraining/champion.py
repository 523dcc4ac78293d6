"""`churnops evaluate-champion`: the serving model's quality on the newest labeled data.

The nightly continuous-training job runs this before retraining: it scores the champion
(models/model.onnx) on the newest snapshot in data/ that carries labels, with the same
quality and fairness metrics as the `evaluate` stage, so a fall in quality on fresh data
shows as a number next to the one it passed the gate with (its model card).

Beside the realised quality it records what the service's estimate without labels
(churnops.cbpe) says on the same rows, and the estimate's error (realised - estimate).

Where the result goes, simply and honestly:
- reports/champion.json, the full result (the CT workflow attaches it to its pull request);
- an MLflow run (tag `churnops.kind=champion-evaluation`), so quality over time is a query;
- reports/champion.prom, Prometheus text format (`churnops_champion_quality{metric}` and
  friends), pushed to a Pushgateway when PROMETHEUS_PUSHGATEWAY_URL (or --pushgateway) is
  set, which is how a batch job's result reaches Prometheus, the dashboard and the alert.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from churnops import cbpe, lineage, schema, snapshots, tracking
from churnops.card import CardError, decision_threshold, read_card
from churnops.config import (
    DATA_DIR,
    MODEL_FILE,
    MODELS_DIR,
    PROFILE_FILE,
    REPORTS_DIR,
    read_json,
    write_json,
)
from churnops.predictor import Predictor
from churnops.quality import fairness, quality

RESULT_FILE = REPORTS_DIR / "champion.json"
PROM_FILE = REPORTS_DIR / "champion.prom"
PUSH_JOB = "churnops-champion-eval"


def newest_labeled_snapshot(data_dir: Path = DATA_DIR) -> tuple[Path, pd.DataFrame]:
    """The newest snapshot with at least one labeled customer, without unlabeled rows."""
    for path in reversed(snapshots.snapshot_paths(data_dir)):
        frame = pd.read_csv(path)
        if schema.TARGET in frame:
            labeled = frame[frame[schema.TARGET].isin(schema.TARGET_VALUES)]
            if len(labeled):
                return path, labeled.reset_index(drop=True)
    raise snapshots.DataError(f"no snapshot in {data_dir}/ has labels ({schema.TARGET})")


def evaluate_champion(
    predictor: Predictor, snapshot: pd.DataFrame, threshold: float
) -> dict[str, Any]:
    """Quality and fairness of the champion on a labeled snapshot."""
    probability = predictor.churn_probability(schema.feature_columns(snapshot))
    y_true = schema.labels(snapshot).to_numpy()
    predicted = (probability >= threshold).astype(int)
    return {
        "rows": len(snapshot),
        "decision_threshold": threshold,
        "quality": quality(y_true, probability, threshold),
        "fairness": fairness(snapshot, y_true, predicted),
        "predicted_churn_rate": round(float(np.mean(predicted)), 6),
        "observed_churn_rate": round(float(np.mean(y_true)), 6),
    }


def estimate_beside_realised(
    models_dir: Path, snapshot: pd.DataFrame, realised: dict[str, float]
) -> dict[str, Any]:
    """The estimate the service would make of these customers, from the model's
    probabilities alone (no labels), the realised values and the error (realised - estimate)."""
    reference = read_json(models_dir / PROFILE_FILE)[cbpe.PREDICTION]
    probability = Predictor(models_dir / MODEL_FILE).churn_probability(
        schema.feature_columns(snapshot)
    )
    estimated = cbpe.estimate(reference, cbpe.bin_counts(reference, probability))
    return {
        "estimated": estimated,
        "realised": {name: realised[name] for name in estimated},
        "error": {name: round(realised[name] - value, 6) for name, value in estimated.items()},
    }


def estimate_summary(estimate: dict[str, Any]) -> str:
    """One line: each metric's estimate and its error."""
    parts = [f"{m} {v:.4f} ({estimate['error'][m]:+.4f})" for m, v in estimate["estimated"].items()]
    return "evaluate-champion: estimated without labels (error): " + ", ".join(parts)


def add_estimate_gauges(registry: CollectorRegistry, result: dict[str, Any]) -> None:
    """The estimate and its error beside churnops_champion_quality (the realised values)."""
    champion = {"model_sha256": result["model_sha256"], "snapshot": result["snapshot"]}
    for name, key, what in (
        ("churnops_champion_estimated_quality", "estimated", "estimated without labels"),
        ("churnops_champion_estimate_error", "error", "realised minus estimated"),
    ):
        gauge = Gauge(
            name,
            f"Champion quality on the newest labeled snapshot, {what} (churnops.cbpe)",
            ["metric", *champion],
            registry=registry,
        )
        for metric, value in result["estimate"][key].items():
            gauge.labels(metric=metric, **champion).set(value)


def metrics_registry(result: dict[str, Any]) -> CollectorRegistry:
    """The result as Prometheus gauges (one registry per evaluation: no global state)."""
    registry = CollectorRegistry()
    champion = {"model_sha256": result["model_sha256"], "snapshot": result["snapshot"]}
    quality_gauge = Gauge(
        "churnops_champion_quality",
        "Champion model quality on the newest labeled snapshot (ROC AUC, F1, ...)",
        ["metric", *champion],
        registry=registry,
    )
    for name, value in result["quality"].items():
        quality_gauge.labels(metric=name, **champion).set(value)
    fairness_gauge = Gauge(
        "churnops_champion_fairness",
        "Champion fairness gaps on the newest labeled snapshot, by sensitive feature",
        ["feature", "metric", *champion],
        registry=registry,
    )
    for feature, gaps in result["fairness"]["by_feature"].items():
        for name, value in gaps.items():
            fairness_gauge.labels(feature=feature, metric=name, **champion).set(value)
    Gauge(
        "churnops_champion_evaluation_rows",
        "Labeled customers the champion was evaluated on",
        registry=registry,
    ).set(result["rows"])
    Gauge(
        "churnops_champion_evaluation_timestamp_seconds",
        "Unix time of the champion evaluation",
        registry=registry,
    ).set(result["evaluated_at"])
    add_estimate_gauges(registry, result)
    return registry


def record_in_mlflow(result: dict[str, Any]) -> str:
    """One MLflow run per evaluation; returns its id."""
    mlflow = tracking.configure()
    with mlflow.start_run(run_name=f"champion-eval {result['snapshot']}") as run:
        mlflow.set_tags(
            {
                "churnops.kind": "champion-evaluation",
                "model_sha256": result["model_sha256"],
                "snapshot": result["snapshot"],
            }
        )
        mlflow.log_metrics(
            tracking.flat_metrics(
                {
                    k: result[k]
                    for k in ("quality", "fairness", "rows", "predicted_churn_rate", "estimate")
                },
                "champion.",
            )
        )
        return run.info.run_id


def run(models_dir: Path, data_dir: Path) -> dict[str, Any]:
    """Evaluate the champion in models_dir on the newest labeled snapshot in data_dir."""
    model_path = models_dir / MODEL_FILE
    card = read_card(models_dir)
    path, snapshot = newest_labeled_snapshot(data_dir)
    result = evaluate_champion(Predictor(model_path), snapshot, decision_threshold(card))
    result["estimate"] = estimate_beside_realised(models_dir, snapshot, result["quality"])
    gated = card["metrics"]
    result.update(
        snapshot=path.name,
        model_sha256=lineage.file_sha256(model_path),
        evaluated_at=round(time.time()),
        gated_roc_auc=gated["roc_auc"],
        # Positive: the champion does worse on fresh data than on the test split it was gated on.
        roc_auc_drop=round(gated["roc_auc"] - result["quality"]["roc_auc"], 6),
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="churnops evaluate-champion",
        description="Score the serving model on the newest labeled snapshot.",
    )
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--output", type=Path, default=RESULT_FILE)
    parser.add_argument("--prom-output", type=Path, default=PROM_FILE)
    parser.add_argument(
        "--pushgateway",
        default=os.environ.get("PROMETHEUS_PUSHGATEWAY_URL"),
        help="Pushgateway address (host:port or URL) to push the metrics to",
    )
    args = parser.parse_args(argv)
    try:
        result = run(args.models_dir, args.data_dir)
    except (CardError, snapshots.DataError) as exc:
        sys.exit(f"evaluate-champion: {exc}")
    result["mlflow_run_id"] = record_in_mlflow(result)
    write_json(args.output, result)
    registry = metrics_registry(result)
    args.prom_output.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(args.prom_output), registry)
    if args.pushgateway:
        push_to_gateway(args.pushgateway, job=PUSH_JOB, registry=registry)
    q = result["quality"]
    print(
        f"evaluate-champion: {result['snapshot']} ({result['rows']} labeled customers): "
        f"ROC AUC {q['roc_auc']:.4f} (at the gate {result['gated_roc_auc']:.4f}), "
        f"F1 {q['f1']:.4f}; wrote {args.output} and {args.prom_output}"
        + (f", pushed to {args.pushgateway}" if args.pushgateway else "")
    )
    print(estimate_summary(result["estimate"]))


if __name__ == "__main__":
    main()
