"""The UI's charts (Altair), apart from the tabs that show them.

The evaluation plots are the `plots:` of dvc.yaml (churnops.plots): the same titles,
files, columns and axis labels that `dvc plots show` and the pull-request report use.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from churnops.plots import Plot, label

CHURN_RED, STAY_GREEN, MUTED = "#d64545", "#2e9e6a", "#e6e9ef"


def plot_chart(plot: Plot, rows: list[dict[str, Any]]) -> alt.Chart:
    """The chart of one pipeline plot: a heatmap for the confusion template, else lines."""
    return confusion_chart(plot, rows) if plot.template == "confusion" else curve_chart(plot, rows)


def probability_gauge(probability: float, threshold: float | None, churn: bool) -> alt.Chart:
    """A bar from 0 to 100% filled to the probability, with the decision threshold marked."""
    base = alt.Chart(pd.DataFrame({"start": [0.0], "end": [1.0], "p": [probability]}))
    scale = alt.Scale(domain=[0, 1])
    track = base.mark_bar(color=MUTED, cornerRadius=8, height=30).encode(
        x=alt.X("start:Q", scale=scale, axis=alt.Axis(format="%", title=None, grid=False)),
        x2="end:Q",
    )
    fill = base.mark_bar(color=CHURN_RED if churn else STAY_GREEN, cornerRadius=8, height=30)
    layers = [track, fill.encode(x="start:Q", x2="p:Q")]
    if threshold is not None:
        marker = alt.Chart(pd.DataFrame({"t": [threshold]}))
        layers.append(marker.mark_tick(color="#1f2430", thickness=3, size=38).encode(x="t:Q"))
        text_color = "white" if probability > threshold else "#1f2430"
        layers.append(
            marker.mark_text(align="left", dx=7, color=text_color, fontWeight="bold").encode(
                x="t:Q", text=alt.value(f"threshold {threshold:.0%}")
            )
        )
    return alt.layer(*layers).properties(height=60)


def curve_chart(plot: Plot, rows: list[dict[str, Any]]) -> alt.Chart:
    """A line per y column of a plot's rows."""
    frame = pd.DataFrame(rows).melt(id_vars=[plot.x], value_vars=list(plot.ys), var_name="series")
    frame["series"] = frame["series"].map(label)
    several = len(plot.ys) > 1
    return (
        alt.Chart(frame, title=plot.title)
        .mark_line(point=len(rows) <= 20, strokeWidth=2.5)
        .encode(
            x=alt.X(f"{plot.x}:Q", title=plot.x_label),
            y=alt.Y("value:Q", title=plot.y_label, scale=alt.Scale(zero=not several)),
            color=alt.Color(
                "series:N",
                legend=alt.Legend(orient="top", title=None) if several else None,
            ),
        )
        .properties(height=260)
    )


def confusion_chart(plot: Plot, rows: list[dict[str, str]]) -> alt.Chart:
    """Customers per (actual, predicted) cell."""
    (y,) = plot.ys
    counts = pd.DataFrame(rows).value_counts().rename("customers").reset_index()
    base = alt.Chart(counts, title=plot.title).encode(
        x=alt.X(f"{y}:N", title=plot.y_label), y=alt.Y(f"{plot.x}:N", title=plot.x_label)
    )
    return (
        base.mark_rect().encode(
            color=alt.Color("customers:Q", scale=alt.Scale(scheme="blues"), legend=None)
        )
        + base.mark_text(fontSize=16).encode(text="customers:Q")
    ).properties(height=260)


def psi_chart(psi: dict[str, float], threshold: float | None) -> alt.Chart:
    frame = pd.DataFrame({"feature": list(psi), "psi": list(psi.values())})
    frame["drifting"] = frame["psi"] > threshold if threshold is not None else False
    bars = (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("psi:Q", title="PSI vs training reference"),
            y=alt.Y("feature:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False)),
            color=alt.Color(
                "drifting:N",
                scale=alt.Scale(domain=[False, True], range=[STAY_GREEN, CHURN_RED]),
                legend=None,
            ),
            tooltip=["feature", alt.Tooltip("psi:Q", format=".3f")],
        )
    )
    if threshold is None:
        return bars.properties(height=22 * len(frame))
    rule = alt.Chart(pd.DataFrame({"t": [threshold]})).mark_rule(strokeDash=[4, 3]).encode(x="t:Q")
    return (bars + rule).properties(height=22 * len(frame))
