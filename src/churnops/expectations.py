"""The data checks: a Great Expectations suite derived from the schema module.

The `validate` stage runs them on all of data/, and `churnops ingest` on a new snapshot
before it is written, so a snapshot that lands in data/ already passes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from churnops import schema

_NUMBER_TYPES = ["int64", "int32", "float64", "float32", "Int64", "Float64"]


@dataclass(frozen=True)
class Violation:
    expectation: str
    column: str | None
    detail: str

    def __str__(self) -> str:
        where = f"column '{self.column}'" if self.column else "table"
        return f"{where}: {self.expectation} failed: {self.detail}"


def build_suite(min_rows: int, max_null_fraction: float) -> Any:
    """The expectation suite for raw snapshots, derived from the schema."""
    import great_expectations as gx

    ex = gx.expectations
    suite = gx.ExpectationSuite(name="churn_snapshots")
    add = suite.add_expectation
    add(ex.ExpectTableColumnsToMatchSet(column_set=list(schema.COLUMNS), exact_match=True))
    add(ex.ExpectTableRowCountToBeBetween(min_value=min_rows))
    add(ex.ExpectColumnValuesToNotBeNull(column=schema.ID_COLUMN))
    add(ex.ExpectColumnValuesToBeUnique(column=schema.ID_COLUMN))
    add(ex.ExpectColumnValuesToNotBeNull(column=schema.TARGET))
    add(ex.ExpectColumnValuesToBeInSet(column=schema.TARGET, value_set=list(schema.TARGET_VALUES)))
    for feature in schema.FEATURES:
        column = feature.name
        mostly = 1.0 - max_null_fraction if feature.nullable else 1.0
        add(ex.ExpectColumnValuesToNotBeNull(column=column, mostly=mostly))
        if feature.is_categorical:
            add(ex.ExpectColumnValuesToBeInSet(column=column, value_set=list(feature.values)))
        else:
            add(ex.ExpectColumnValuesToBeInTypeList(column=column, type_list=_NUMBER_TYPES))
            add(
                ex.ExpectColumnValuesToBeBetween(
                    column=column, min_value=feature.minimum, max_value=feature.maximum
                )
            )
    return suite


def _detail(result: Any, columns: set[str]) -> str:
    column = result.expectation_config.kwargs.get("column")
    if column is not None and column not in columns:
        return "the column is missing"
    info = result.exception_info
    errors = [info] if "raised_exception" in info else list(info.values())
    for error in errors:
        if error.get("raised_exception"):
            return error["exception_message"].splitlines()[0]
    observed = result.result
    if "details" in observed and "mismatched" in observed["details"]:
        mismatch = observed["details"]["mismatched"]
        missing, unexpected = mismatch.get("missing", []), mismatch.get("unexpected", [])
        return f"missing columns {missing}, unexpected columns {unexpected}"
    if "unexpected_count" in observed:
        sample = sorted({str(v) for v in observed.get("partial_unexpected_list", [])})[:5]
        return (
            f"{observed['unexpected_count']} rows ({observed.get('unexpected_percent', 0):.2f}%) "
            f"unexpected, e.g. {sample}"
        )
    return f"observed {observed.get('observed_value')!r}"


def check(df: pd.DataFrame, min_rows: int, max_null_fraction: float) -> list[Violation]:
    """Validate a raw frame; an empty list means it passes."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("churn")
        .add_dataframe_asset("snapshots")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": df})
    )
    results = batch.validate(build_suite(min_rows, max_null_fraction)).results
    columns = set(df.columns)
    order = {name: i for i, name in enumerate(schema.COLUMNS)}
    violations = [
        Violation(
            r.expectation_config.type,
            r.expectation_config.kwargs.get("column"),
            _detail(r, columns),
        )
        for r in results
        if not r.success
    ]
    return sorted(violations, key=lambda v: order.get(v.column, -1) if v.column else -1)
