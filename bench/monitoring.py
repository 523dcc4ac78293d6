"""Benchmark: retraining responsiveness, from drift in live traffic to GitHub's dispatch.

Runs the drift drill (tests/support/drill.py: `bentoml serve`, Prometheus, Alertmanager,
the retrain trigger and a GitHub stand-in, on loopback) several times with the drill's
shortened timings and with production's, and compares each measured time with the worst
case computed from the same files (the reference, in the same run). Writes
bench/RESULTS-monitoring.md.

    .venv/bin/python bench/monitoring.py [--drill-runs 3] [--production-runs 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support.drill holds the drill, shared with its test

from tests.support.drill import (  # noqa: E402
    ALERTMANAGER,
    DRILL_BOUND_SECONDS,
    PROMETHEUS,
    DrillResult,
    Timing,
    production_bound,
    run_drill,
    running_loop,
)

RESULTS = REPO / "bench" / "RESULTS-monitoring.md"


def drill(timing: Timing, bound: float) -> DrillResult:
    with (
        tempfile.TemporaryDirectory(prefix="churnops-drill-") as workdir,
        running_loop(REPO, Path(workdir), timing) as loop,
    ):
        return run_drill(loop, REPO, timing, bound)


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drill-runs", type=int, default=3)
    parser.add_argument("--production-runs", type=int, default=1)
    args = parser.parse_args()
    os.chdir(REPO)
    steps = production_bound(REPO)
    worst = sum(value for _, value, _ in steps)
    runs: list[tuple[str, DrillResult]] = []
    for mode, count, timing, bound in (
        ("drill", args.drill_runs, Timing(), DRILL_BOUND_SECONDS),
        ("production", args.production_runs, Timing.production(REPO), worst),
    ):
        runs += [(mode, drill(timing, bound)) for _ in range(count)]

    lines = [
        "# Retraining responsiveness: drift onset to the workflow dispatch",
        "",
        f"Command: `.venv/bin/python bench/monitoring.py --drill-runs {args.drill_runs} "
        f"--production-runs {args.production_runs}` (`make bench-monitoring`)",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs (shared with other jobs), "
        f"Python {platform.python_version()}",
        f"Prometheus: {version(PROMETHEUS)}; Alertmanager: {version(ALERTMANAGER)}",
        "",
        "Reference: the worst case computed from the production files "
        f"(tests/support/drill.py `production_bound`): **{worst:.0f} s**",
        "",
        "| Step | Seconds | From |",
        "|---|---|---|",
        *(f"| {what} | {value:.0f} | {source} |" for what, value, source in steps),
        "",
        "Every run: normal traffic, then drifted traffic (price +20%, 60% moved to "
        "month-to-month contracts); times from the first drifted request.",
        "",
        "| Timings | Drift detected | Alert firing | Dispatch | Dispatch / worst case "
        "| Dispatches | Trigger decisions |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, result in runs:
        decisions = ", ".join(f"{k} {v}" for k, v in result.decisions.items() if v)
        lines.append(
            f"| {mode} | {result.onset_to_detected:.1f} s | {result.onset_to_firing:.1f} s "
            f"| **{result.onset_to_dispatch:.1f} s** | {result.onset_to_dispatch / worst:.2f} "
            f"| {result.dispatches} | {decisions} |"
        )
    for mode in ("drill", "production"):
        times = [r.onset_to_dispatch for m, r in runs if m == mode]
        if times:
            lines.append(
                f"\n{mode} timings: median {statistics.median(times):.1f} s over {len(times)} "
                f"run(s), max {max(times):.1f} s."
            )
    RESULTS.write_text("\n".join(lines) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
