"""A table's rows read as the API reads a body (batch scoring, the UI): gaps null, flags ints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops import schema
from churnops.serving.request_model import example_customer


def _frame(rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame([example_customer()] * rows)


def test_gaps_of_any_kind_become_none_and_float_flags_become_ints() -> None:
    frame = _frame()
    frame["total_charges"] = [1.5, np.nan, None]
    frame["female"] = [1.0, np.nan, 0.0]  # a flag column with a gap is read as floats
    frame["contract"] = pd.array(["One year", None, pd.NA], dtype="string")
    columns = schema.request_columns(frame)
    assert columns["total_charges"] == [1.5, None, None]
    assert columns["female"] == [1, None, 0] and type(columns["female"][0]) is int
    assert columns["contract"] == ["One year", None, None]
    assert list(columns) == list(schema.FEATURE_NAMES)
    assert schema.records_of(schema.request_columns(frame))[1]["total_charges"] is None


def test_numpy_scalars_in_object_columns_become_python_values() -> None:
    frame = _frame(2)
    frame["female"] = pd.Series([np.float32(1.0), np.int64(0)], dtype=object)
    frame["tenure"] = pd.Series([np.float32(2.5), 3], dtype=object)
    columns = schema.request_columns(frame)
    assert columns["female"] == [1, 0] and {type(v) for v in columns["female"]} == {int}
    assert columns["tenure"] == [2.5, 3] and type(columns["tenure"][0]) is float


def test_missing_features_are_all_named() -> None:
    with pytest.raises(ValueError, match="the file has no column\\(s\\) tenure, contract"):
        schema.require_features(set(schema.FEATURE_NAMES) - {"tenure", "contract"}, "the file")
    schema.require_features(schema.FEATURE_NAMES, "the file")
