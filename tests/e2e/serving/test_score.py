"""`churnops score INPUT OUTPUT` on real files: same predictions as the API's predictor,
bad rows set aside with their reason, CSV and Parquet both ways."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops import schema
from churnops.config import MODEL_FILE
from churnops.predictor import Predictor
from tests.support.bento_server import BIN

pytestmark = pytest.mark.slow


def _score(repo_root: Path, source: Path, target: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "churnops", "score", str(source), str(target)],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(("source", "target"), [(".csv", ".parquet"), (".parquet", ".csv")])
def test_score_writes_predictions_and_rejects(
    repo_root: Path, tmp_path: Path, source: str, target: str
) -> None:
    customers = pd.read_parquet(repo_root / "build" / "test.parquet").head(300).copy()
    customers.loc[10, "tenure"] = 500.0
    customers.loc[20, "contract"] = "Weekly"
    input_path, output = tmp_path / f"in{source}", tmp_path / f"out{target}"
    if source == ".csv":
        customers.to_csv(input_path, index=False)
    else:
        customers.to_parquet(input_path, index=False)

    run = _score(repo_root, input_path, output)

    assert run.returncode == 0, run.stderr
    assert "298 customers scored" in run.stdout and "2 rejected" in run.stdout
    assert "rows" in run.stderr  # the progress bar
    scored = pd.read_csv(output) if target == ".csv" else pd.read_parquet(output)
    kept = customers.drop(index=[10, 20])
    assert scored[schema.ID_COLUMN].tolist() == kept[schema.ID_COLUMN].tolist()
    features = schema.features_frame(kept)
    columns = {name: features[name].tolist() for name in schema.FEATURE_NAMES}
    expected = Predictor(repo_root / "models" / MODEL_FILE).churn_probability(columns)
    np.testing.assert_allclose(scored["churn_probability"], expected, atol=1e-6)
    rejects = pd.read_csv(output.with_name(output.name + ".rejects.csv"))
    assert rejects["row"].tolist() == [10, 20]
    assert rejects["reason"][0].startswith("tenure:")
    assert "'Month-to-month', 'One year' or 'Two year'" in rejects["reason"][1]


def test_score_of_a_clean_file_matches_the_predictor(repo_root: Path, tmp_path: Path) -> None:
    customers = pd.read_parquet(repo_root / "build" / "test.parquet").head(300)
    input_path, output = tmp_path / "in.parquet", tmp_path / "out.parquet"
    customers.to_parquet(input_path, index=False)
    run = _score(repo_root, input_path, output)
    assert run.returncode == 0, run.stderr
    assert "300 customers scored" in run.stdout and "0 rejected" in run.stdout
    features = schema.features_frame(customers)
    columns = {name: features[name].tolist() for name in schema.FEATURE_NAMES}
    expected = Predictor(repo_root / "models" / MODEL_FILE).churn_probability(columns)
    np.testing.assert_allclose(pd.read_parquet(output)["churn_probability"], expected, atol=1e-6)
    assert not output.with_name(output.name + ".rejects.csv").exists()


def test_score_refuses_a_file_without_a_feature(repo_root: Path, tmp_path: Path) -> None:
    customers = pd.read_parquet(repo_root / "build" / "test.parquet").head(5)
    customers.drop(columns=["tenure"]).to_csv(tmp_path / "in.csv", index=False)
    run = _score(repo_root, tmp_path / "in.csv", tmp_path / "out.csv")
    assert run.returncode == 1
    assert "tenure" in run.stderr and "Traceback" not in run.stderr
