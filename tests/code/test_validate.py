"""The Great Expectations suite catches each kind of bad data and names column and check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnops import validate
from churnops.snapshots import DataError, read_snapshots
from tests.support.frames import synthetic_snapshot

MIN_ROWS, MAX_NULLS = 100, 0.01


def _drop_tenure(df: pd.DataFrame) -> None:
    del df["tenure"]


def _text_in_tenure(df: pd.DataFrame) -> None:
    df["tenure"] = df["tenure"].astype(str) + " months"


def _unknown_contract(df: pd.DataFrame) -> None:
    df.loc[3, "contract"] = "Weekly"


def _all_null_charges(df: pd.DataFrame) -> None:
    df["monthly_charges"] = np.nan


def _target_as_bool(df: pd.DataFrame) -> None:
    df["churn"] = df["churn"].map({"Yes": "True", "No": "False"})


def _repeated_customer(df: pd.DataFrame) -> None:
    df.loc[5, "customer_id"] = df.loc[4, "customer_id"]


def _negative_tenure(df: pd.DataFrame) -> None:
    df.loc[0, "tenure"] = -3


def _extra_column(df: pd.DataFrame) -> None:
    df["notes"] = "x"


BREAKAGES = [
    (_drop_tenure, "tenure", "expect_table_columns_to_match_set"),
    (_text_in_tenure, "tenure", "expect_column_values_to_be_in_type_list"),
    (_unknown_contract, "contract", "expect_column_values_to_be_in_set"),
    (_all_null_charges, "monthly_charges", "expect_column_values_to_not_be_null"),
    (_target_as_bool, "churn", "expect_column_values_to_be_in_set"),
    (_repeated_customer, "customer_id", "expect_column_values_to_be_unique"),
    (_negative_tenure, "tenure", "expect_column_values_to_be_between"),
    (_extra_column, "notes", "expect_table_columns_to_match_set"),
]


def test_valid_data_passes() -> None:
    assert validate.check(synthetic_snapshot(300), MIN_ROWS, MAX_NULLS) == []


@pytest.mark.parametrize(("breakage", "column", "expectation"), BREAKAGES)
def test_each_breakage_is_named(breakage, column: str, expectation: str) -> None:
    df = synthetic_snapshot(300)
    breakage(df)
    messages = [str(v) for v in validate.check(df, MIN_ROWS, MAX_NULLS)]
    assert any(column in m and expectation in m for m in messages), messages


def test_too_few_rows_fail() -> None:
    violations = validate.check(synthetic_snapshot(50), MIN_ROWS, MAX_NULLS)
    assert [v.expectation for v in violations] == ["expect_table_row_count_to_be_between"]


def test_nullable_feature_tolerates_a_few_nulls_only() -> None:
    df = synthetic_snapshot(1000)
    df.loc[:4, "total_charges"] = np.nan  # 0.5%: within the 1% tolerance
    assert validate.check(df, MIN_ROWS, MAX_NULLS) == []
    df.loc[:49, "total_charges"] = np.nan  # 5%
    (violation,) = validate.check(df, MIN_ROWS, MAX_NULLS)
    assert violation.column == "total_charges"


def test_empty_snapshot_file_is_a_clear_error(tmp_path: Path) -> None:
    synthetic_snapshot(10).to_csv(tmp_path / "2026-01-01.csv", index=False)
    (tmp_path / "2026-01-02.csv").write_text("")
    with pytest.raises(DataError, match=r"2026-01-02\.csv is empty"):
        read_snapshots(tmp_path)


def test_no_snapshots_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no snapshots"):
        read_snapshots(tmp_path)


def test_snapshots_are_concatenated_in_date_order(tmp_path: Path) -> None:
    first, second = synthetic_snapshot(5, seed=1), synthetic_snapshot(5, seed=2)
    second["customer_id"] += 100
    second.to_csv(tmp_path / "2026-02-01.csv", index=False)
    first.to_csv(tmp_path / "2026-01-01.csv", index=False)
    combined = read_snapshots(tmp_path)
    assert combined["customer_id"].tolist() == [*range(1, 6), *range(101, 106)]
