"""The same data and params train the same bytes whatever BLAS kernel the CPU gets.

OpenBLAS picks a kernel per CPU (GitHub's runners are a mix); OPENBLAS_CORETYPE makes
this machine use another CPU's. lbfgs' weights differ between kernels in the last bits,
so the raw fit differs (the control below) and the rounded one must not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import hashlib, io, json, sys
import joblib, pandas as pd
from churnops import export, lineage, schema
from churnops.config import load_params
from churnops.model import at_served_precision, pipeline_from_params

def md5(pipeline):
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return hashlib.md5(buffer.getvalue()).hexdigest()

params = load_params()
train, test = pd.read_parquet("build/train.parquet"), pd.read_parquet("build/test.parquet")
pipeline = pipeline_from_params(params).fit(schema.features_frame(train), schema.labels(train))
raw = md5(pipeline)
at_served_precision(pipeline)
metrics = json.loads(open("reports/metrics.json").read())
candidate = export.export(pipeline, train, test, metrics, params, lineage.data_hash())
print(json.dumps({"raw": raw, "pipeline": md5(pipeline), "model": candidate.card["model_sha256"],
                  "parity": candidate.card["parity"]}))
"""
KERNELS = [("Haswell", 1), ("Haswell", 2), ("SkylakeX", 1), ("SkylakeX", 2), ("Sandybridge", 1)]


def train_under(repo_root: Path, kernel: str, threads: int) -> dict:
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel, "OPENBLAS_NUM_THREADS": str(threads)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=repo_root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def runs(repo_root: Path) -> dict[tuple[str, int], dict]:
    assert (repo_root / "build" / "train.parquet").exists(), "run `make pipeline` first"
    return {
        (kernel, threads): train_under(repo_root, kernel, threads) for kernel, threads in KERNELS
    }


def test_every_kernel_and_thread_count_trains_the_same_pipeline_and_model(runs) -> None:
    reference = runs["Haswell", 1]
    for key, run in runs.items():
        assert {k: run[k] for k in ("pipeline", "model", "parity")} == {
            k: reference[k] for k in ("pipeline", "model", "parity")
        }, key


def test_the_raw_fit_does_differ_between_kernels(runs) -> None:
    """The control: without rounding, another CPU would change dvc.lock."""
    assert runs["SkylakeX", 1]["raw"] != runs["Haswell", 1]["raw"]
