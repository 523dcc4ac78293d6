"""Stage `validate`: check the raw snapshots against a Great Expectations suite.

The suite (churnops.expectations) is derived from the schema module. On any violation the
stage fails with a message naming the column and the expectation, and writes nothing
downstream reads.
"""

from __future__ import annotations

import logging
import sys

import pandas as pd

from churnops import schema
from churnops.config import DATASET, VALIDATION_REPORT, load_params, write_json
from churnops.expectations import check
from churnops.snapshots import DataError, read_snapshots


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """A validated frame in the schema's column order: numbers as float64, text as str.

    (pandas' str columns are Arrow buffers, not one Python object per cell.)
    """
    out = pd.DataFrame({schema.ID_COLUMN: df[schema.ID_COLUMN].astype("int64")})
    for feature in schema.FEATURES:
        out[feature.name] = df[feature.name].astype("str" if feature.is_categorical else "float64")
    out[schema.TARGET] = df[schema.TARGET].astype("str")
    return out


def main() -> None:
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    params = load_params()["validate"]
    try:
        raw = read_snapshots()
    except DataError as exc:
        sys.exit(f"validate: {exc}")
    violations = check(raw, params["min_rows"], params["max_null_fraction"])
    write_json(
        VALIDATION_REPORT,
        {
            "rows": len(raw),
            "success": not violations,
            "violations": [str(v) for v in violations],
        },
    )
    if violations:
        lines = "\n".join(f"  - {v}" for v in violations)
        sys.exit(f"validate: the data breaks {len(violations)} expectation(s):\n{lines}")
    DATASET.parent.mkdir(parents=True, exist_ok=True)
    typed(raw).to_parquet(DATASET, index=False)
    print(f"validate: {len(raw)} rows pass every expectation")


if __name__ == "__main__":
    main()
