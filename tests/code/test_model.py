"""The sklearn pipeline builder."""

from __future__ import annotations

import pytest

from churnops import schema
from churnops.model import ESTIMATORS, build_pipeline
from tests.support.frames import synthetic_snapshot


def test_unknown_estimator_names_the_choices() -> None:
    with pytest.raises(ValueError, match="logistic_regression"):
        build_pipeline("svm", {}, seed=1)


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_each_estimator_fits_raw_features_and_tolerates_unknown_categories(estimator: str) -> None:
    train = synthetic_snapshot(300)
    hyperparams = {"n_estimators": 5} if estimator != "logistic_regression" else {}
    pipeline = build_pipeline(estimator, hyperparams, seed=1)
    pipeline.fit(schema.features_frame(train), schema.labels(train))
    unseen = schema.features_frame(train.head(2)).copy()
    unseen["contract"] = "Weekly"
    assert pipeline.predict_proba(unseen).shape == (2, 2)


def test_same_seed_same_model() -> None:
    train = synthetic_snapshot(300)
    X, y = schema.features_frame(train), schema.labels(train)
    first = build_pipeline("random_forest", {"n_estimators": 5}, seed=3).fit(X, y)
    second = build_pipeline("random_forest", {"n_estimators": 5}, seed=3).fit(X, y)
    assert (first.predict_proba(X) == second.predict_proba(X)).all()
