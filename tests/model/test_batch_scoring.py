"""`churnops score` with the released model: bad rows set aside with their reason, empty files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.serving import score
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


def test_a_run_that_fails_midway_leaves_the_previous_output_whole(
    repo_root, tmp_path, monkeypatch
) -> None:
    output = tmp_path / "scored.csv"
    output.write_text("previous\n")
    good = _frame(3)
    written: list[int] = []

    def chunks(path):
        yield good
        # Streaming: the first chunk is already on disk, beside the output, not in memory.
        (staged,) = tmp_path.glob(".scored.csv.*/scored.csv")
        written.append(len(staged.read_text().splitlines()))
        yield good.drop(columns="tenure")  # the second chunk lacks a column: the run fails

    monkeypatch.setattr(score, "read_chunks", chunks)
    with pytest.raises(ValueError, match="tenure"):
        score_file(tmp_path / "in.csv", output, repo_root / "models")
    assert written == [1 + 3]  # a header and the first chunk's rows
    assert output.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scored.csv"]  # no half-written leftovers


def test_cells_a_spreadsheet_would_run_are_quoted_in_csv_outputs(repo_root, tmp_path) -> None:
    frame = _frame(3)
    frame.insert(0, "customer_id", ['=HYPERLINK("http://x")', "+1", "ok"])
    frame.loc[2, "tenure"] = 500.0  # rejected: its raw row goes to the rejects file
    frame["note"] = ["-2+3", "@SUM(A1)", "\tcmd"]
    source, output = tmp_path / "in.parquet", tmp_path / "out.csv"
    frame.to_parquet(source)
    assert score_file(source, output, repo_root / "models") == (2, 1)
    scored = pd.read_csv(output, dtype=str)
    assert scored["customer_id"].tolist() == ['\'=HYPERLINK("http://x")', "'+1"]
    rejects = pd.read_csv(output.with_name("out.csv.rejects.csv"), dtype=str, keep_default_na=False)
    assert rejects["note"].tolist() == ["'\tcmd"] and rejects["customer_id"].tolist() == ["ok"]
