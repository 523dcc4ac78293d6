"""`churnops score` with the released model: bad rows set aside with their reason, empty files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops.serving.request_model import example_customer
from churnops.serving.score import Scorer, score_file


def _frame(rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame([example_customer()] * rows)


def test_a_chunk_with_a_bad_row_sets_only_that_row_aside(repo_root) -> None:
    scorer = Scorer(repo_root / "models")
    frame = _frame(4)
    frame["female"] = [0.0, 1.0, 0.0, 0.5]
    frame.loc[2, "tenure"] = 500.0
    scored, rejects = scorer.score(frame, first_row=100)
    assert scored.index.tolist() == [0, 1]
    assert rejects["row"].tolist() == [102, 103]
    assert rejects["reason"].str.split(":").str[0].tolist() == ["tenure", "female"]
    clean, none = scorer.score(_frame(4), first_row=0)
    assert len(clean) == 4 and none.empty
    np.testing.assert_allclose(clean["churn_probability"].iloc[0], scored["churn_probability"][0])


def test_an_empty_file_scores_nothing_and_says_so(repo_root, tmp_path) -> None:
    for suffix in (".parquet", ".csv"):
        source = tmp_path / f"empty{suffix}"
        empty = _frame(1).head(0)
        empty.to_parquet(source) if suffix == ".parquet" else empty.to_csv(source, index=False)
        assert score_file(source, tmp_path / f"out{suffix}", repo_root / "models") == (0, 0)
        assert (tmp_path / f"out{suffix}").exists()
