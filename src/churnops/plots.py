"""The evaluation plots as dvc.yaml's `plots:` defines them, for every reader of them.

`dvc plots show`, the pull-request report and the UI draw the same titles, files, columns
and axis labels, read from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


def label(name: str) -> str:
    return name.replace("_", " ").capitalize().replace(" tv", " TV")


@dataclass(frozen=True)
class Plot:
    """One entry of dvc.yaml's `plots:`: a file of reports/plots and how to draw it."""

    title: str
    file: str
    x: str
    ys: tuple[str, ...]
    x_label: str
    y_label: str
    template: str


def pipeline_plots(dvc_yaml: Path) -> list[Plot]:
    """The plots dvc.yaml defines, in its order (none if the file is not there)."""
    try:
        entries = yaml.safe_load(dvc_yaml.read_text()).get("plots", [])
    except OSError:
        return []
    plots = []
    for entry in entries:
        ((title, spec),) = entry.items()
        ((file, columns),) = spec["y"].items()
        ys = tuple(columns) if isinstance(columns, list) else (columns,)
        plots.append(
            Plot(
                title=spec.get("title", title),
                file=file,
                x=spec["x"],
                ys=ys,
                x_label=spec.get("x_label", label(spec["x"])),
                y_label=spec.get("y_label", label(ys[0])),
                template=spec.get("template", "linear"),
            )
        )
    return plots
