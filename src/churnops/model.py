"""The one sklearn Pipeline that is trained, evaluated and exported to ONNX.

All learned preprocessing lives inside it, so serving cannot drift from training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churnops import schema

ESTIMATORS: dict[str, type] = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "gradient_boosting": GradientBoostingClassifier,
}
# Trees split on raw values; scaling them would only add float32 rounding to ONNX parity.
_SCALED = {"logistic_regression"}


def build_pipeline(estimator: str, hyperparams: dict[str, Any], seed: int) -> Pipeline:
    """Preprocessing plus the estimator named in params.yaml, seeded for reproducibility."""
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"unknown estimator {estimator!r} in params.yaml train.estimator; "
            f"choose one of {sorted(ESTIMATORS)}"
        )
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if estimator in _SCALED:
        numeric_steps.append(("scale", StandardScaler()))
    preprocess = ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), list(schema.NUMERIC_FEATURES)),
            (
                "categorical",
                OneHotEncoder(
                    categories=[
                        list(schema.BY_NAME[n].values) for n in schema.CATEGORICAL_FEATURES
                    ],
                    handle_unknown="ignore",
                ),
                list(schema.CATEGORICAL_FEATURES),
            ),
        ]
    )
    model = ESTIMATORS[estimator](random_state=seed, **hyperparams)
    return Pipeline([("preprocess", preprocess), ("classifier", model)])


def at_served_precision(pipeline: Pipeline) -> Pipeline:
    """Round a fitted linear model's weights to float32, the precision ONNX serves them at.

    OpenBLAS picks its kernel by CPU, and lbfgs' weights differ with it in the last bits
    (about 1e-11 relative on the Telco data): rounded, every x86-64 CPU trains the same
    bytes. Trees use no BLAS and keep their float64 thresholds.
    """
    classifier = pipeline.named_steps["classifier"]
    for name in ("coef_", "intercept_"):
        if isinstance(getattr(classifier, name, None), np.ndarray):
            setattr(classifier, name, getattr(classifier, name).astype(np.float32).astype(float))
    return pipeline


def hyperparams_of(params: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters params.yaml gives the chosen estimator."""
    cfg = params["train"]
    return cfg["hyperparams"].get(cfg["estimator"], {})


def pipeline_from_params(params: dict[str, Any]) -> Pipeline:
    """The unfitted pipeline that params.yaml describes."""
    return build_pipeline(
        params["train"]["estimator"], hyperparams_of(params), params["base"]["seed"]
    )


def folds_from_params(params: dict[str, Any]) -> StratifiedKFold:
    """The seeded, stratified cross-validation folds that params.yaml describes."""
    seed = params["base"]["seed"]
    return StratifiedKFold(n_splits=params["train"]["cv_folds"], shuffle=True, random_state=seed)
