"""The pipeline's plots in the pull-request comment itself, as GitHub renders Markdown.

Curves become Mermaid `xychart-beta` charts (GitHub draws Mermaid code blocks), this pull
request's line first and the base's second, sampled at a few points, with the sampled
values in a table below; the confusion matrix becomes a Markdown table of counts.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

from churnops.plots import Plot, label

SAMPLES = 11  # points per curve: enough to see its shape, few enough to read


def _grid(plot: Plot, rows: list[dict[str, Any]]) -> list[float]:
    """The x values to show: a short series' own, else SAMPLES even steps over its range."""
    xs = sorted({float(r[plot.x]) for r in rows})
    if len(xs) <= SAMPLES:
        return xs
    return [float(x) for x in np.linspace(xs[0], xs[-1], SAMPLES)]


def _sampled(plot: Plot, y: str, rows: list[dict[str, Any]], grid: list[float]) -> list[float]:
    points = sorted((float(r[plot.x]), float(r[y])) for r in rows)
    xs, ys = zip(*points, strict=True)
    return [float(v) for v in np.interp(grid, xs, ys)]


def _axis_number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"


Rows = list[dict[str, Any]]


def curve(plot: Plot, rows: Rows, base_rows: Rows | None) -> str:
    """A Mermaid line chart of this pull request (and the base) and a table of its values."""
    grid = _grid(plot, rows)

    def name(y: str, whose: str) -> str:
        return whose if len(plot.ys) == 1 else f"{label(y)}, {whose}"

    series = [(name(y, "this PR"), _sampled(plot, y, rows, grid)) for y in plot.ys]
    if base_rows:
        series += [(name(y, "base"), _sampled(plot, y, base_rows, grid)) for y in plot.ys]
    names = "; ".join(f"{n + 1}: {name}" for n, (name, _) in enumerate(series))
    low = min(0.0, *(min(values) for _, values in series))
    high = max(1.0, *(max(values) for _, values in series))
    chart = [
        "```mermaid",
        "xychart-beta",
        f'  title "{plot.title}"',
        f'  x-axis "{plot.x_label}" [{", ".join(_axis_number(x) for x in grid)}]',
        f'  y-axis "{plot.y_label}" {low:g} --> {high:g}',
        *(f"  line [{', '.join(f'{v:.3f}' for v in values)}]" for _, values in series),
        "```",
    ]
    table = [
        f"| {plot.x_label} | {' | '.join(name for name, _ in series)} |",
        "|---" * (len(series) + 1) + "|",
        *(
            f"| {_axis_number(x)} | {' | '.join(f'{values[i]:.3f}' for _, values in series)} |"
            for i, x in enumerate(grid)
        ),
    ]
    return "\n".join(
        [
            f"**{plot.title}** (lines {names})",
            "",
            *chart,
            "",
            "<details><summary>Values</summary>",
            "",
            *table,
            "",
            "</details>",
        ]
    )


def confusion(plot: Plot, rows: Rows, base_rows: Rows | None) -> str:
    """Customers per (actual, predicted) cell, with the base's count beside each."""
    (y,) = plot.ys
    counts = Counter((r[plot.x], r[y]) for r in rows)
    base = Counter((r[plot.x], r[y]) for r in base_rows or [])
    classes = sorted({c for pair in counts | base for c in pair})

    def cell(actual: str, predicted: str) -> str:
        now = counts[(actual, predicted)]
        if not base_rows:
            return str(now)
        return f"{now} ({now - base[(actual, predicted)]:+d})"

    return "\n".join(
        [
            f"**{plot.title}**" + (" (change against the base in brackets)" if base_rows else ""),
            "",
            f"| {plot.x_label} \\ {plot.y_label} | {' | '.join(classes)} |",
            "|---" * (len(classes) + 1) + "|",
            *(f"| {a} | {' | '.join(cell(a, p) for p in classes)} |" for a in classes),
        ]
    )


def markdown(plot: Plot, rows: str, base_rows: str | None) -> str:
    """One plot from its JSON rows (and the base's, when the base has the file)."""
    ours, theirs = json.loads(rows), json.loads(base_rows) if base_rows else None
    draw = confusion if plot.template == "confusion" else curve
    return draw(plot, ours, theirs)
