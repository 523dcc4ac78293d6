"""The released ONNX model: parity with sklearn, lineage inside it, sensible behaviour."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from skl2onnx.common.data_types import FloatTensorType

from churnops import export, lineage, schema
from churnops.config import load_params, read_json
from churnops.model import build_pipeline
from churnops.predictor import Predictor


@pytest.fixture(scope="module")
def repo(repo_root: Path) -> Path:
    assert (repo_root / "models" / "model.onnx").exists(), "run `make pipeline` first"
    return repo_root


@pytest.fixture(scope="module")
def predictor(repo: Path) -> Predictor:
    return Predictor(repo / "models" / "model.onnx")


@pytest.fixture(scope="module")
def test_set(repo: Path) -> pd.DataFrame:
    return pd.read_parquet(repo / "build" / "test.parquet")


def test_onnx_matches_sklearn_on_every_test_customer(repo: Path, predictor, test_set) -> None:
    pipeline = joblib.load(repo / "build" / "pipeline.joblib")
    expected = pipeline.predict_proba(schema.features_frame(test_set))[:, 1]
    actual = predictor.churn_probability(schema.feature_columns(test_set))
    assert np.max(np.abs(expected - actual)) <= 1e-4
    assert ((expected >= 0.5) == (actual >= 0.5)).all()


def test_model_carries_its_lineage(repo: Path, predictor) -> None:
    card = read_json(repo / "models" / "model_card.json")
    assert card["model_sha256"] == lineage.file_sha256(repo / "models" / "model.onnx")
    assert predictor.metadata["data_hash"] == lineage.data_hash(repo / "data.dvc")
    assert predictor.metadata["params_hash"] == lineage.params_hash(
        load_params(repo / "params.yaml")
    )
    assert predictor.metadata["estimator"] == card["estimator"]


def _customer(**changes) -> dict[str, list]:
    base = {
        "female": 0,
        "senior_citizen": 0,
        "partner": 1,
        "dependents": 0,
        "tenure": 12,
        "phone_service": 1,
        "multiple_lines": "No",
        "internet_service": "Fiber optic",
        "online_security": "No",
        "online_backup": "No",
        "device_protection": "No",
        "tech_support": "No",
        "streaming_tv": "Yes",
        "streaming_movies": "Yes",
        "contract": "Month-to-month",
        "paperless_billing": 1,
        "payment_method": "Electronic check",
        "monthly_charges": 95.0,
        "total_charges": 1140.0,
    }
    return {name: [value] for name, value in (base | changes).items()}


def test_longer_contracts_and_tenure_lower_churn(predictor) -> None:
    monthly = predictor.churn_probability(_customer())[0]
    two_year = predictor.churn_probability(_customer(contract="Two year"))[0]
    loyal = predictor.churn_probability(_customer(tenure=70, total_charges=6650.0))[0]
    assert two_year < monthly
    assert loyal < monthly


def test_gender_alone_barely_moves_the_prediction(predictor) -> None:
    female = predictor.churn_probability(_customer(female=1))[0]
    male = predictor.churn_probability(_customer(female=0))[0]
    assert abs(female - male) < 0.03


def test_missing_total_charges_is_imputed_as_sklearn_imputes_it(repo: Path, predictor) -> None:
    customer = _customer(total_charges=None, tenure=0)
    pipeline = joblib.load(repo / "build" / "pipeline.joblib")
    expected = pipeline.predict_proba(schema.features_frame(pd.DataFrame(customer)))[0, 1]
    assert np.isclose(predictor.churn_probability(customer)[0], expected, atol=1e-4)


@pytest.mark.parametrize("estimator", ["random_forest", "gradient_boosting"])
def test_other_estimators_convert_with_parity(estimator: str, repo: Path, tmp_path, test_set):
    train = pd.read_parquet(repo / "build" / "train.parquet").head(2000)
    params = load_params(repo / "params.yaml")["train"]["hyperparams"][estimator]
    pipeline = build_pipeline(estimator, params | {"n_estimators": 20}, seed=1)
    pipeline.fit(schema.features_frame(train), schema.labels(train))
    path = tmp_path / "model.onnx"
    path.write_bytes(export.to_onnx(pipeline, {"estimator": estimator}).SerializeToString())
    check = export.parity(pipeline, Predictor(path), test_set, threshold=0.5)
    assert check["label_agreement"] == 1.0
    assert check["max_abs_diff"] <= 1e-4


def test_inputs_are_typed_from_the_schema() -> None:
    types = dict(export.initial_types())
    assert list(types) == list(schema.FEATURE_NAMES)
    assert isinstance(types["tenure"], FloatTensorType)
    assert type(types["contract"]).__name__ == "StringTensorType"


def test_metrics_report_has_every_required_figure(repo: Path) -> None:
    metrics = read_json(repo / "reports" / "metrics.json")
    required = {"roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "log_loss", "brier"}
    assert required <= metrics["test"].keys()
    assert metrics["test"]["roc_auc"] >= 0.83
    assert metrics["fit"]["diagnosis"] in {"good fit", "overfitting", "underfitting"}
    for feature in schema.SENSITIVE_FEATURES:
        assert set(metrics["fairness"]["by_feature"][feature]) == {
            "demographic_parity_difference",
            "equal_opportunity_difference",
        }


def test_conversion_is_byte_for_byte_reproducible_across_processes(repo: Path) -> None:
    """Set and dict orders vary with PYTHONHASHSEED between processes; the bytes must not."""
    code = (
        "import hashlib, joblib; from churnops import export; "
        "p = joblib.load('build/pipeline.joblib'); "
        "m = export.to_onnx(p, {'estimator': 'x'}).SerializeToString(); "
        "print(hashlib.sha256(m).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=repo,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(digests) == 1, digests
