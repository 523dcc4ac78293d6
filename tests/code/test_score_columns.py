"""`churnops score` reads a table's rows as the API reads a body: gaps are null, flags are ints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops import schema
from churnops.request_model import example_customer
from churnops.score import Scorer, customer_columns, customer_records, score_file


def _frame(rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame([example_customer()] * rows)


def test_gaps_of_any_kind_become_none_and_float_flags_become_ints() -> None:
    frame = _frame()
    frame["total_charges"] = [1.5, np.nan, None]
    frame["female"] = [1.0, np.nan, 0.0]  # a flag column with a gap is read as floats
    frame["contract"] = pd.array(["One year", None, pd.NA], dtype="string")
    columns = customer_columns(frame)
    assert columns["total_charges"] == [1.5, None, None]
    assert columns["female"] == [1, None, 0] and type(columns["female"][0]) is int
    assert columns["contract"] == ["One year", None, None]
    assert list(columns) == list(schema.FEATURE_NAMES)
    assert customer_records(frame)[1]["total_charges"] is None


def test_numpy_scalars_in_object_columns_become_python_values() -> None:
    frame = _frame(2)
    frame["female"] = pd.Series([np.float32(1.0), np.int64(0)], dtype=object)
    frame["tenure"] = pd.Series([np.float32(2.5), 3], dtype=object)
    columns = customer_columns(frame)
    assert columns["female"] == [1, 0] and {type(v) for v in columns["female"]} == {int}
    assert columns["tenure"] == [2.5, 3] and type(columns["tenure"][0]) is float


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
