"""The Streamlit app's logic with Streamlit's AppTest, and the client's /metrics parsing.

No API runs here: the app is pointed at a loopback port where nothing listens, which is
exactly the "API down" case the page must survive. Scoring against the real API is in
tests/e2e/test_ui_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest
from streamlit.testing.v1 import AppTest

from churnops import cbpe, drift, schema
from churnops.serving.metrics import ServingMetrics
from churnops.ui.client import parse_metrics
from tests.support.net import free_port

APP = Path(__file__).resolve().parents[2] / "src" / "churnops" / "ui" / "app.py"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app, run once, with its API URL on a free loopback port (nothing listening)."""
    monkeypatch.setenv("CHURNOPS_API_URL", f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_form_has_one_widget_per_schema_feature_with_its_values_and_range(app: AppTest):
    for feature in schema.FEATURES:
        key = f"feature_{feature.name}"
        if feature.kind == "binary":
            assert app.toggle(key=key).value is False
        elif feature.is_categorical:
            widget = app.selectbox(key=key)
            assert tuple(widget.options) == feature.values
            assert widget.value == feature.values[0]
        else:
            widget = app.number_input(key=key)
            assert (widget.min, widget.max) == (feature.minimum, feature.maximum)
            if feature.nullable:
                assert widget.value is None  # unknown until the user enters it
            else:
                assert feature.minimum <= widget.value <= feature.maximum


def test_api_down_is_said_plainly_and_the_page_stays_usable(app: AppTest):
    sidebar_errors = [e.value for e in app.sidebar.error]
    assert any("API unavailable" in e and "cannot be reached" in e for e in sidebar_errors)
    assert not any("Traceback" in e.value for e in app.error)

    app.toggle(key="feature_senior_citizen").set_value(True)
    app.button[0].click().run()

    assert not app.exception
    assert any("cannot be reached" in e.value for e in app.main.error)
    # The form is still there, keeping what the user entered.
    assert app.toggle(key="feature_senior_citizen").value is True


def test_the_request_shown_is_the_form_as_the_api_wants_it(app: AppTest):
    app.toggle(key="feature_senior_citizen").set_value(True)
    app.selectbox(key="feature_contract").set_value("Two year")
    app.number_input(key="feature_tenure").set_value(5.0)
    app.number_input(key="feature_monthly_charges").set_value(99.5)
    app.button[0].click().run()

    shown = app.code[0].value
    customer = json.loads(shown[shown.index("{") : shown.rindex("}") + 1])["customers"][0]
    assert set(customer) == set(schema.FEATURE_NAMES)
    assert customer["senior_citizen"] == 1 and customer["female"] == 0
    assert customer["contract"] == "Two year"
    assert customer["tenure"] == 5.0 and customer["monthly_charges"] == 99.5
    assert customer["total_charges"] is None


def _columns(rows: int) -> dict[str, list]:
    """Customers cycling through each feature's values (categories, flags, numbers)."""
    columns: dict[str, list] = {}
    for feature in schema.FEATURES:
        if feature.is_categorical:
            columns[feature.name] = [feature.values[i % len(feature.values)] for i in range(rows)]
        elif feature.kind == "binary":
            columns[feature.name] = [i % 2 for i in range(rows)]
        else:
            columns[feature.name] = [float(i % 50) for i in range(rows)]
    return columns


def test_live_metrics_are_read_from_the_services_own_exposition():
    columns = _columns(300)
    probabilities = [(i % 10) / 10 for i in range(300)]
    profile = drift.build_profile(columns, bins=5)
    profile[cbpe.PREDICTION] = cbpe.reference(np.array(probabilities), lambda p: p, 0.5)
    serve = {
        "drift_window": 500,
        "drift_request_share": 1.0,  # the whole request: the window is the reference
        "drift_min_samples": 200,
        "psi_threshold": 0.2,
    }
    metrics = ServingMetrics({}, profile, serve, git_commit="0" * 40, decision_threshold=0.5)
    metrics.observe_predictions(columns, probabilities)
    metrics.refresh_drift()

    live = parse_metrics(generate_latest(metrics.registry).decode())

    assert live.predictions == 300 and live.window_customers == 300
    assert set(live.feature_psi) == set(schema.FEATURE_NAMES)
    assert max(live.feature_psi.values()) < 0.01  # the window is the reference itself
    assert live.drift_detected is False
    reference = profile[cbpe.PREDICTION]
    assert live.estimated == cbpe.estimate(reference, cbpe.bin_counts(reference, probabilities))
    assert live.prediction_psi is not None and live.prediction_psi < 0.01
    churners_among_women = sum(
        p >= 0.5 for p, female in zip(probabilities, columns["female"], strict=True) if female
    )
    assert live.groups[("female", "1")] == [150, churners_among_women]


def _estimate_page() -> None:
    from churnops.ui.app import estimate_section
    from churnops.ui.client import LiveMetrics

    estimated = {"roc_auc": 0.81, "precision": 0.6, "recall": 0.5, "f1": 0.545}
    gated = {"roc_auc": 0.84, "precision": 0.65, "recall": 0.56, "f1": 0.6}
    estimate_section(LiveMetrics(estimated=estimated, prediction_psi=0.25), {"metrics": gated})


def test_the_estimate_is_shown_beside_the_gated_values_with_the_prediction_drift():
    at = AppTest.from_function(_estimate_page, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    shown = {m.label: (m.value, m.delta) for m in at.metric}
    assert shown["Estimated ROC AUC"] == ("0.810", "-0.030 vs test split")
    assert shown["Estimated F1"] == ("0.545", "-0.055 vs test split")
    assert shown["Prediction drift (PSI)"][0] == "0.250"
