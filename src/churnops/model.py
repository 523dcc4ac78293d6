"""The one sklearn Pipeline that is trained, evaluated and exported to ONNX.

All learned preprocessing lives inside it, so serving cannot drift from training.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
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
