"""Benchmark: `churnops score` on 1M customers against the bare onnxruntime call on them.

Side by side in one run, three rounds each, alternating: `score_file` (what `churnops
score` runs: Parquet in and out, validation, rejects file, progress bar) and the model
alone, one onnxruntime call on the same rows already in memory as numpy columns; the ratio
of the medians is what the target is about. Then `churnops score` once as its own process,
for its wall time with start-up and its peak resident memory. Writes
bench/RESULTS-scoring.md.

    .venv/bin/python bench/scoring.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from pipeline import timed  # noqa: E402

from churnops import schema  # noqa: E402
from churnops.config import MODEL_FILE, TEST_SET  # noqa: E402
from churnops.predictor import Predictor  # noqa: E402
from churnops.serving.score import CHUNK_ROWS, score_file  # noqa: E402

ROUNDS = 3
TARGET = 0.5


def bare_seconds(features: pd.DataFrame) -> float:
    predictor = Predictor(REPO / "models" / MODEL_FILE)
    columns = {name: features[name].to_numpy() for name in schema.FEATURE_NAMES}
    began = time.perf_counter()
    predictor.churn_probability(columns)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS-scoring.md")
    args = parser.parse_args()
    base = pd.read_parquet(REPO / TEST_SET)
    frame = pd.concat([base] * (args.rows // len(base) + 1)).head(args.rows)
    frame = frame.reset_index(drop=True)
    features = schema.features_frame(frame)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    scored, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.parquet", Path(tmp) / "out.parquet"
        frame.to_parquet(source, index=False)
        for _ in range(ROUNDS):
            began = time.perf_counter()
            score_file(source, target, REPO / "models")
            scored.append(time.perf_counter() - began)
            bare.append(bare_seconds(features))
        command = [str(Path(sys.executable).parent / "churnops"), "score", str(source), str(target)]
        process_seconds, peak = timed(command, REPO, env)
        written = len(pd.read_parquet(target, columns=["churn_probability"]))
    assert written == args.rows, f"scored {written} of {args.rows} rows"
    score_rate = args.rows / statistics.median(scored)
    bare_rate = args.rows / statistics.median(bare)
    ratio = score_rate / bare_rate
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line),
        platform.processor(),
    )
    lines = [
        "# Batch scoring: `churnops score` vs the bare onnxruntime call",
        "",
        f"Command: `make bench-scoring` (`.venv/bin/python bench/scoring.py --rows {args.rows}`)",
        f"Machine: {cpu}, {os.cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"Rows: {args.rows:,} customers (the test split repeated), Parquet in and out; "
        f"{ROUNDS} rounds each, alternating, medians.",
        "",
        "| | rows/s | wall s (median) |",
        "|---|---|---|",
        f"| `score_file` (validation, rejects, progress bar, Parquet in and out) "
        f"| {score_rate:,.0f} | {statistics.median(scored):.2f} |",
        f"| bare onnxruntime, one call on numpy columns in memory | {bare_rate:,.0f} "
        f"| {statistics.median(bare):.2f} |",
        "",
        f"Ratio: **{ratio:.2f}x** of the bare call (target at least {TARGET}x): "
        f"{'met' if ratio >= TARGET else 'NOT met'}.",
        "",
        f"`churnops score` as a command, start-up included: {process_seconds:.2f} s wall, peak "
        f"resident memory {peak:,.0f} MiB (chunks of {CHUNK_ROWS:,} rows).",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
