"""The churnops Streamlit app (`make ui`): the churn API for people who would rather click.

Four tabs: one customer scored from a form generated from the schema module; a CSV file
scored, with rejected rows and their reasons; the model card of the serving model; and
live monitoring from /metrics: drift per feature, the quality estimated without labels and
the drift of the predictions. Everything comes from the API at $CHURNOPS_API_URL
(plus, for the model card, reports/ when they describe the serving model). When the API
is down or refuses a request the page says so and stays usable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from churnops import schema
from churnops.config import GATE_REPORT, METRICS
from churnops.plots import label, pipeline_plots
from churnops.ui.charts import plot_chart, probability_gauge, psi_chart
from churnops.ui.client import ApiClient, ApiError, LiveMetrics, api_url, score_frame

# A typical customer (the Telco data's medians) as the form's starting point; categories
# start at their first allowed value, flags at No and nullable numbers empty (unknown).
TYPICAL = {"tenure": 29.0, "monthly_charges": 70.35}
# The form's columns, each a few titled sections of features.
LAYOUT: tuple[dict[str, tuple[str, ...]], ...] = (
    {
        "Customer": ("female", "senior_citizen", "partner", "dependents"),
        "Billing": ("paperless_billing", "payment_method", "monthly_charges", "total_charges"),
    },
    {
        "Account": ("tenure", "contract"),
        "Phone and internet": ("phone_service", "multiple_lines", "internet_service"),
    },
    {
        "Add-ons": (
            "online_security",
            "online_backup",
            "device_protection",
            "tech_support",
            "streaming_tv",
            "streaming_movies",
        ),
    },
)
CARD_METRICS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "f1": "F1",
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "brier": "Brier score",
    "log_loss": "Log loss",
}


def form_layout() -> list[dict[str, list[schema.Feature]]]:
    """LAYOUT's columns of schema features; features LAYOUT does not place go in 'Other'."""
    placed = {name for column in LAYOUT for names in column.values() for name in names}
    columns = [
        {title: [schema.BY_NAME[n] for n in names] for title, names in column.items()}
        for column in LAYOUT
    ]
    other = [f for f in schema.FEATURES if f.name not in placed]
    if other:
        columns[-1]["Other"] = other
    return columns


def feature_input(feature: schema.Feature) -> Any:
    """One widget for a feature, its value as the API wants it."""
    key = f"feature_{feature.name}"
    if feature.kind == "binary":
        on = st.toggle(label(feature.name), key=key, help=f"{feature.description} (Yes = 1)")
        return int(on)
    if feature.is_categorical:
        return st.selectbox(label(feature.name), feature.values, key=key, help=feature.description)
    value = st.number_input(
        label(feature.name),
        min_value=float(feature.minimum),
        max_value=float(feature.maximum),
        value=None if feature.nullable else TYPICAL.get(feature.name, float(feature.minimum)),
        placeholder="unknown" if feature.nullable else None,
        step=1.0,
        format="%g",
        key=key,
        help=feature.description + ("; leave empty if unknown" if feature.nullable else ""),
    )
    return None if value is None else float(value)


@st.cache_resource
def client_for(url: str) -> ApiClient:
    return ApiClient(url)


def fetch_metadata(client: ApiClient) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return client.metadata(), None
    except ApiError as error:
        return None, str(error)


def sidebar(client: ApiClient, metadata: dict[str, Any] | None, problem: str | None) -> None:
    with st.sidebar:
        st.markdown("## churnops")
        st.caption("Customer churn predictions from the served ONNX model.")
        st.caption(f"API `{client.base_url}`")
        if metadata is None:
            st.error(f"**API unavailable.** {problem}", icon=":material/cloud_off:")
            st.caption("The form still works; scoring resumes when the API is back.")
            return
        ready = client.ready()
        (st.success if ready else st.warning)(
            "API ready" if ready else "API up, model not ready yet",
            icon=":material/check_circle:" if ready else ":material/hourglass_top:",
        )
        st.markdown(
            f"**Model** `{str(metadata.get('model_sha256', '?'))[:12]}`  \n"
            f"{label(str(metadata.get('estimator', '?')))}  \n"
            f"trained {str(metadata.get('trained_at', '?')).replace('T', ' ')}  \n"
            f"Decision threshold **{metadata.get('decision_threshold', '?')}**"
        )


def score_customer_tab(client: ApiClient, threshold: float | None) -> None:
    st.markdown("Describe a customer; the model estimates how likely they are to leave.")
    layout = form_layout()
    with st.form("customer_form", border=True):
        customer: dict[str, Any] = {}
        for column, column_sections in zip(
            st.columns(len(layout), gap="large"), layout, strict=True
        ):
            with column:
                for title, features in column_sections.items():
                    st.markdown(f"**{title}**")
                    for feature in features:
                        customer[feature.name] = feature_input(feature)
        submitted = st.form_submit_button(
            "Score customer", type="primary", icon=":material/query_stats:"
        )
    if submitted:
        st.session_state.scored_customer = customer
        try:
            st.session_state.prediction = client.predict([customer])[0]
            st.session_state.prediction_error = None
        except ApiError as error:
            st.session_state.prediction, st.session_state.prediction_error = None, str(error)
    if st.session_state.get("prediction_error"):
        st.error(st.session_state.prediction_error, icon=":material/error:")
    prediction = st.session_state.get("prediction")
    if prediction:
        probability, churn = prediction["churn_probability"], bool(prediction["churn"])
        left, right = st.columns([1, 2], gap="large", vertical_alignment="center")
        with left:
            st.metric("Churn probability", f"{probability:.1%}")
            if churn:
                st.error("**Likely to churn**", icon=":material/trending_down:")
            else:
                st.success("**Likely to stay**", icon=":material/verified:")
        with right:
            st.altair_chart(probability_gauge(probability, threshold, churn), width="stretch")
            where = f"{threshold:.0%}" if threshold is not None else "the model's threshold"
            st.caption(f"The decision is churn at a probability of {where} or more.")
    if "scored_customer" in st.session_state:
        with st.expander("The request, to call the API yourself"):
            body = json.dumps({"customers": [st.session_state.scored_customer]}, indent=2)
            st.code(
                f"curl -s {client.base_url}/predict -H 'content-type: application/json' "
                f"-d @- <<'EOF'\n{body}\nEOF",
                language="bash",
            )


def scored_upload(
    client: ApiClient, upload: Any, metadata: dict[str, Any] | None
) -> tuple[pd.DataFrame, pd.DataFrame] | str:
    """(scored rows, rejected rows) of an uploaded CSV, or why it could not be scored."""
    try:
        frame = pd.read_csv(upload)
    except (ValueError, UnicodeDecodeError) as error:
        return f"{upload.name} is not a readable CSV file: {error}"
    max_batch = int((metadata or {}).get("serve", {}).get("max_batch", 1000))
    with st.spinner(f"Scoring {len(frame)} customers..."):
        try:
            return score_frame(client.predict, frame, max_batch)
        except (ApiError, ValueError) as error:
            return str(error)


def batch_tab(client: ApiClient, metadata: dict[str, Any] | None) -> None:
    columns = ", ".join(f"`{name}`" for name in schema.FEATURE_NAMES)
    st.markdown(
        "Upload a CSV file with one customer per row and these columns (others are kept "
        f"as they are): {columns}. Flags are 0/1; an empty `total_charges` means unknown."
    )
    upload = st.file_uploader("Customers (CSV)", type=["csv"])
    if upload is None:
        return
    # Scored once per uploaded file, not again on every rerun of the page.
    if st.session_state.get("batch_file") != upload.file_id:
        st.session_state.batch_file = upload.file_id
        st.session_state.batch = scored_upload(client, upload, metadata)
    result = st.session_state.batch
    if isinstance(result, str):
        st.error(result, icon=":material/error:")
        return
    scored, rejects = result
    churners = int(scored["churn"].sum()) if len(scored) else 0
    a, b, c = st.columns(3)
    a.metric("Customers scored", len(scored))
    b.metric("Predicted to churn", churners)
    c.metric("Rejected rows", len(rejects))
    if len(scored):
        st.download_button(
            "Download the scored CSV",
            scored.to_csv(index=False).encode(),
            file_name=f"{Path(upload.name).stem}.scored.csv",
            mime="text/csv",
            type="primary",
            icon=":material/download:",
            on_click="ignore",
        )
        results = ["churn_probability", "churn"]
        first = [c for c in (schema.ID_COLUMN, *results) if c in scored.columns]
        st.dataframe(
            scored[first + [c for c in scored.columns if c not in first]],
            hide_index=True,
            column_config={
                "churn_probability": st.column_config.ProgressColumn(
                    "churn_probability", format="percent", min_value=0.0, max_value=1.0
                )
            },
        )
    if len(rejects):
        st.warning(
            f"{len(rejects)} row(s) were not scored; `row` counts data rows from 0.",
            icon=":material/warning:",
        )
        shown = [c for c in ("row", schema.ID_COLUMN, "reason") if c in rejects.columns]
        st.dataframe(rejects[shown], hide_index=True, key="rejects")


def read_report(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def reports_for(model_sha256: str | None) -> Path | None:
    """reports/ when the gate report there is about the serving model, else None."""
    reports = Path(os.environ.get("CHURNOPS_REPORTS_DIR", GATE_REPORT.parent))
    gate = read_report(reports / GATE_REPORT.name)
    return reports if gate and model_sha256 and gate.get("candidate") == model_sha256 else None


LINEAGE = {
    "model_sha256": "Model SHA-256",
    "trained_at": "Trained at",
    "trained_from_commit": "Trained from commit",
    "git_commit": "Serving commit",
    "data_hash": "Data (DVC hash)",
    "params_hash": "Params hash",
    "mlflow_run_id": "MLflow run",
    "image": "Image",
}
FAIRNESS_TITLES = {
    "demographic_parity_difference": "Demographic parity gap",
    "equal_opportunity_difference": "Equal opportunity gap",
}


def evaluation_plots(reports: Path) -> None:
    """The pipeline's plots (dvc.yaml beside reports/) of the serving model."""
    charts = [
        plot_chart(plot, rows)
        for plot in pipeline_plots(reports.parent / "dvc.yaml")
        if (rows := read_report(reports.parent / plot.file))
    ]
    for start in range(0, len(charts), 2):
        for column, chart in zip(st.columns(2), charts[start : start + 2], strict=False):
            column.altair_chart(chart, width="stretch")


def model_card_tab(metadata: dict[str, Any] | None, problem: str | None) -> None:
    if metadata is None:
        st.error(f"The model card comes from the API's /metadata. {problem}")
        return
    metrics = metadata.get("metrics", {})
    st.markdown(
        f"#### {label(str(metadata.get('estimator', 'model')))} "
        f"`{str(metadata.get('model_sha256', ''))[:12]}`"
    )
    st.caption(f"Test set, {metrics.get('diagnosis', '')}: {metrics.get('advice', '')}")
    items = [(key, title) for key, title in CARD_METRICS.items() if key in metrics]
    for start in range(0, len(items), 4):
        for column, (key, title) in zip(st.columns(4), items[start : start + 4], strict=False):
            column.metric(title, f"{metrics[key]:.3f}", border=True)
    reports = reports_for(metadata.get("model_sha256"))
    gate = read_report(reports / GATE_REPORT.name) if reports else None
    fairness_column, gate_column = st.columns(2, gap="large")
    with fairness_column:
        st.markdown("##### Fairness")
        by_feature = (
            (read_report(reports / METRICS.name) or {}).get("fairness") if reports else None
        )
        if by_feature:
            table = pd.DataFrame(by_feature["by_feature"]).T
        else:
            table = pd.DataFrame([{k: metrics.get(k) for k in FAIRNESS_TITLES}], index=["worst"])
        table = table.rename(columns=FAIRNESS_TITLES).rename_axis("Groups by").reset_index()
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(
            "Gaps between groups in predicted churn rate (demographic parity) and in "
            "recall (equal opportunity); 0 is parity."
        )
    with gate_column:
        st.markdown("##### Gate verdict")
        if gate:
            passed = sum(rule["passed"] for rule in gate["rules"])
            verdict = f"{passed} of {len(gate['rules'])} rules passed"
            if gate["passed"]:
                st.success(f"Passed: {verdict}", icon=":material/verified:")
            else:
                st.error(f"Failed: {verdict}", icon=":material/block:")
            with st.expander("Rule by rule"):
                st.dataframe(
                    pd.DataFrame(gate["rules"])[["rule", "value", "passed"]], hide_index=True
                )
        else:
            st.info(
                "Every serving model has passed the gate. Its rule-by-rule verdict and "
                "evaluation plots show here when the app runs beside that model's reports/ "
                "($CHURNOPS_REPORTS_DIR).",
                icon=":material/info:",
            )
    if reports:
        st.markdown("##### Evaluation plots")
        evaluation_plots(reports)
    with st.expander("Lineage"):
        st.table(
            pd.DataFrame(
                {"": [str(metadata.get(key, "")) for key in LINEAGE]}, index=list(LINEAGE.values())
            )
        )


def estimate_section(live: LiveMetrics, metadata: dict[str, Any] | None) -> None:
    """The quality estimated from live churn probabilities, beside the gated test values."""
    gated = (metadata or {}).get("metrics") or {}
    st.markdown("##### Performance estimated before labels")
    *estimates, drift_column = st.columns(len(live.estimated) + 1)
    for column, (name, value) in zip(estimates, live.estimated.items(), strict=True):
        tested = gated.get(name)
        delta = None if tested is None else f"{value - tested:+.3f} vs test split"
        column.metric(f"Estimated {CARD_METRICS[name]}", f"{value:.3f}", delta, border=True)
    psi = live.prediction_psi
    drift_column.metric("Prediction drift (PSI)", "-" if psi is None else f"{psi:.3f}", border=True)
    st.caption(
        "Estimated from the churn probabilities of the drift window, calibrated on the test "
        "split (confidence-based performance estimation): no labels needed. Prediction drift "
        "compares those probabilities with the test split's."
    )


def monitoring_tab(client: ApiClient, metadata: dict[str, Any] | None) -> None:
    st.button("Refresh", icon=":material/refresh:", key="refresh_metrics")
    try:
        live: LiveMetrics = client.live_metrics()
    except ApiError as error:
        st.error(f"Live metrics come from the API's /metrics. {error}")
        return
    serve = (metadata or {}).get("serve", {})
    threshold, min_samples = serve.get("psi_threshold"), serve.get("drift_min_samples")
    a, b, c, d = st.columns(4)
    a.metric("Customers scored", f"{live.predictions:,.0f}", border=True)
    b.metric("Requests rejected", f"{sum(live.rejected.values()):,.0f}", border=True)
    c.metric("Customers in drift window", f"{live.window_customers:,.0f}", border=True)
    d.metric("Drift", "detected" if live.drift_detected else "none", border=True)
    if live.drift_detected:
        drifting = sorted(
            f for f, v in live.feature_psi.items() if threshold is not None and v > threshold
        )
        st.error(f"Inputs have drifted from the training data: {', '.join(drifting)}.")
    if live.feature_psi and (min_samples is None or live.window_customers >= min_samples):
        st.markdown("##### Drift per feature")
        st.altair_chart(psi_chart(live.feature_psi, threshold), width="stretch")
        if threshold is not None:
            st.caption(f"Red bars are above the PSI threshold {threshold} (dashed line).")
        if live.estimated:
            estimate_section(live, metadata)
    else:
        need = f"{min_samples:,}" if min_samples is not None else "enough"
        st.info(
            f"Drift is measured once {need} customers are in the window "
            f"(now {live.window_customers:,.0f})."
        )
    if live.groups:
        st.markdown("##### Predicted churn rate by group (live traffic)")
        rows = [
            {
                "Group": f"{label(feature)}: {'yes' if group == '1' else 'no'}",
                "Customers scored": scored,
                "Predicted churn rate": churners / scored if scored else None,
            }
            for (feature, group), (scored, churners) in sorted(live.groups.items())
        ]
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            column_config={
                "Customers scored": st.column_config.NumberColumn(format="localized"),
                "Predicted churn rate": st.column_config.ProgressColumn(
                    format="percent", min_value=0.0, max_value=1.0
                ),
            },
        )


def main() -> None:
    st.set_page_config(page_title="churnops", page_icon=":material/query_stats:", layout="wide")
    client = client_for(api_url())
    metadata, problem = fetch_metadata(client)
    sidebar(client, metadata, problem)
    threshold = metadata.get("decision_threshold") if metadata else None
    st.title("Customer churn")
    # The form and the upload always run, so what was entered survives a look at another
    # tab; the model card and the monitoring run only when open (monitoring is then fresh).
    single, batch, card, monitoring = st.tabs(
        ["Score a customer", "Score a file", "Model card", "Live monitoring"],
        key="tab",
        on_change="rerun",
    )
    with single:
        score_customer_tab(client, threshold)
    with batch:
        batch_tab(client, metadata)
    if card.open:
        with card:
            model_card_tab(metadata, problem)
    if monitoring.open:
        with monitoring:
            monitoring_tab(client, metadata)


if __name__ == "__main__":
    main()
