"""Benchmark: the pipeline's wall time and peak memory, stage by stage, as data grows.

Runs every stage module (as DVC would) in a scratch copy of the project on the default
data and on enlargements resampled from it, then the real `dvc repro` (forced, and with
nothing changed) on the default data. Writes bench/RESULTS-pipeline.md.

    .venv/bin/python bench/pipeline.py [--sizes 7043,1000000,10000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
STAGES = ("validate", "split", "train", "evaluate", "export", "gate")
VENV_BIN = str(Path(sys.executable).parent)


# A child's ru_maxrss starts at the resident memory of the process that spawned it (Linux
# keeps the high-water mark of the address space exec replaces), which here holds the data:
# a small launcher spawns the command and reports the command's own peak.
LAUNCHER = (
    "import os, subprocess, sys; process = subprocess.Popen(sys.argv[2:]); "
    "_, status, usage = os.wait4(process.pid, 0); "
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss)); "
    "sys.exit(os.waitstatus_to_exitcode(status))"
)


def timed(
    cmd: list[str], cwd: Path, env: dict[str, str], ok_codes: tuple[int, ...] = (0,)
) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one child process."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".maxrss") as peak:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, peak.name, *cmd],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        elapsed = time.perf_counter() - start
        if done.returncode not in ok_codes:
            raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}: {done.stderr.decode()[-2000:]}")
        return elapsed, int(peak.read()) / 1024


def enlarged(base: pd.DataFrame, rows: int) -> pd.DataFrame:
    """`rows` customers resampled (seeded) from the base snapshot, with fresh ids."""
    if rows == len(base):
        return base
    sample = base.sample(n=rows, replace=True, random_state=7).reset_index(drop=True)
    sample["customer_id"] = range(1, rows + 1)
    return sample


def scratch_project(root: Path, snapshot: pd.DataFrame) -> Path:
    project = root / f"rows-{len(snapshot)}"
    (project / "data").mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    snapshot.to_csv(project / "data" / "2026-11-01.csv", index=False, lineterminator="\n")
    return project


def stage_rows(size: int, project: Path, env: dict[str, str]) -> list[tuple[str, float, float]]:
    rows = []
    for stage in STAGES:
        # A gate that rejects the resampled data's model still did all its work.
        ok_codes = (0, 1) if stage == "gate" else (0,)
        seconds, mib = timed([sys.executable, "-m", f"churnops.{stage}"], project, env, ok_codes)
        rows.append((stage, seconds, mib))
        print(f"{size:>9} rows  {stage:<9} {seconds:8.1f} s {mib:8.0f} MiB", flush=True)
    return rows


def dvc_rows(root: Path, env: dict[str, str]) -> dict[str, float]:
    clone = root / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    subprocess.run(
        [sys.executable, "-m", "churnops.intake.fetch"],
        cwd=clone,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    forced, forced_mib = timed([sys.executable, "-m", "dvc", "repro", "--force"], clone, env)
    noop, _ = timed([sys.executable, "-m", "dvc", "repro"], clone, env)
    return {"forced": forced, "forced_mib": forced_mib, "noop": noop}


def measure(rows: list[tuple[str, float, float]], i: int) -> tuple[float, float]:
    """Seconds and peak MiB of stage `i`, or of all stages (their sum and the largest peak)."""
    if i < len(rows):
        return rows[i][1], rows[i][2]
    return sum(s for _, s, _ in rows), max(m for *_, m in rows)


def report(results: dict[int, list[tuple[str, float, float]]], dvc: dict[str, float]) -> str:
    sizes = sorted(results)
    head = "| stage | " + " | ".join(f"{n:,} rows" for n in sizes) + " |"
    lines = [head, "|---" * (len(sizes) + 1) + "|"]
    for i, stage in enumerate([*STAGES, "all stages"]):
        cells = []
        for k, n in enumerate(sizes):
            seconds, mib = measure(results[n], i)
            cell = f"{seconds:.1f} s, {mib:,.0f} MiB"
            if k:
                before_s, before_mib = measure(results[sizes[k - 1]], i)
                cell += f" (time {seconds / before_s:.1f}x, memory {mib / before_mib:.1f}x)"
            cells.append(f"**{cell}**" if stage == "all stages" else cell)
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return "\n".join(
        [
            "# Pipeline benchmark",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine}, with"
            " `.venv/bin/python bench/pipeline.py` (`make bench-pipeline`). Each stage runs as"
            " its own process (`python -m churnops.<stage>`, as DVC runs it) on the default data"
            " and on"
            " seeded resamplings of it; peak MiB is the stage process's maximum resident memory."
            " In brackets, each stage's growth from the previous size, measured in the same run.",
            "",
            *lines,
            "",
            "The real `dvc repro` on the default data in a fresh clone"
            " (MLflow in a local SQLite store):",
            "",
            f"- `dvc repro --force`, whole pipeline: **{dvc['forced']:.1f} s**"
            f" (target: under 60 s), peak {dvc['forced_mib']:.0f} MiB",
            f"- `dvc repro` with nothing changed: **{dvc['noop']:.1f} s** (target: under 3 s)",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="7043,1000000,10000000")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS-pipeline.md")
    args = parser.parse_args()
    base = pd.read_csv(REPO / "data" / "2026-11-01.csv")
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        }
        dvc = dvc_rows(root, env)
        results = {}
        for size in (int(s) for s in args.sizes.split(",")):
            results[size] = stage_rows(size, scratch_project(root, enlarged(base, size)), env)
    args.out.write_text(report(results, dvc))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
