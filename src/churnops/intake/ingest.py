"""`churnops ingest`: append a dated snapshot of new customers to data/ and record it in DVC.

Sources: `synthetic` (default) resamples a daily batch of new customers from the Telco
data, seeded by the date and scenario, so a snapshot can be rebuilt byte for byte on a
machine without the DVC remote; `file` reads a CSV or Parquet extract; `sql` runs a
query against any SQLAlchemy URL (a warehouse, or SQLite in the tests). Every source
yields the schema's columns, and customer ids that data/ has not seen before.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from churnops import schema
from churnops.config import DATA_DIR, DATA_POINTER
from churnops.intake.fetch import ensure, rebuild
from churnops.intake.synthetic import DEFAULT_ROWS, SCENARIOS, synthetic_batch
from churnops.snapshots import DataError, base_snapshot, snapshot_paths, write_snapshot


def conform(extract: pd.DataFrame, known_ids: pd.Series) -> pd.DataFrame:
    """An extract from a file or query in the schema's columns, sorted by id, ids new.

    Sorting makes the snapshot independent of the order the source returned rows in.
    """
    missing = [c for c in schema.COLUMNS if c not in extract.columns]
    if missing:
        raise DataError(f"the source lacks the column(s) {', '.join(missing)}")
    batch = extract[list(schema.COLUMNS)].copy()
    try:
        batch[schema.ID_COLUMN] = batch[schema.ID_COLUMN].astype("int64")
    except (TypeError, ValueError):
        raise DataError(f"{schema.ID_COLUMN} must be integers in every row") from None
    duplicated = batch[schema.ID_COLUMN][batch[schema.ID_COLUMN].duplicated()]
    seen = batch[schema.ID_COLUMN][batch[schema.ID_COLUMN].isin(known_ids)]
    for ids, where in ((duplicated, "more than once in the source"), (seen, "already in data/")):
        if len(ids):
            sample = ", ".join(str(i) for i in ids.head(5))
            raise DataError(f"{len(ids)} {schema.ID_COLUMN} value(s) appear {where}: {sample}")
    return batch.sort_values(schema.ID_COLUMN, kind="stable").reset_index(drop=True)


def read_file(path: Path) -> pd.DataFrame:
    """A CSV or Parquet extract."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise DataError(f"{path}: the file source reads .csv or .parquet files")


def read_sql(url: str, query: str) -> pd.DataFrame:
    """The rows a query returns from any database SQLAlchemy can reach."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return pd.read_sql_query(sqlalchemy.text(query), connection)
    finally:
        engine.dispose()


def save(batch: pd.DataFrame, path: Path, force: bool = False) -> str:
    """Write the snapshot; an existing one is kept if identical and refused if different."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / path.name
        write_snapshot(batch, staged)
        if path.exists():
            if path.read_bytes() == staged.read_bytes():
                return "unchanged (identical snapshot already present)"
            if not force:
                raise DataError(
                    f"{path} exists with other contents; a published snapshot is history. "
                    "Ingest under another --date, or pass --force to replace it."
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(staged.read_bytes())
    return "written"


def dvc_add(data_dir: Path = DATA_DIR) -> None:
    """Record data/ in data.dvc (and the DVC cache), as the pipeline's `data` dependency."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "add", str(data_dir)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise DataError(f"`dvc add {data_dir}` failed: {result.stderr.strip()}")


def record_recipe(name: str, recipe: dict[str, Any], pointer: Path = DATA_POINTER) -> None:
    """Note how a snapshot was made under `meta.snapshots` in data.dvc (DVC keeps `meta`)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    document = yaml.load(pointer.read_text())
    document.setdefault("meta", {}).setdefault("snapshots", {})[name] = recipe
    with pointer.open("w") as f:
        yaml.dump(document, f)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="churnops ingest", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--date", type=date.fromisoformat, help="snapshot date (default today, UTC)"
    )
    parser.add_argument("--source", choices=("synthetic", "file", "sql"), default="synthetic")
    parser.add_argument("--scenario", choices=SCENARIOS, default="none", help="synthetic drift")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="synthetic batch size")
    parser.add_argument("--path", type=Path, help="file source: a .csv or .parquet extract")
    parser.add_argument("--url", help="sql source: SQLAlchemy URL (e.g. from an env variable)")
    parser.add_argument("--query", help="sql source: the query returning the schema's columns")
    parser.add_argument("--force", action="store_true", help="replace a different snapshot")
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild missing snapshots that data.dvc records"
    )
    parser.add_argument("--no-dvc", action="store_true", help="write the file, skip `dvc add`")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if args.source == "file" and args.path is None:
        parser.error("--source file needs --path")
    if args.source == "sql" and not (args.url and args.query):
        parser.error("--source sql needs --url and --query")
    return args


def known_ids(exclude: Path, data_dir: Path = DATA_DIR) -> pd.Series:
    """Customer ids in every snapshot but `exclude` (the one being written)."""
    frames = [
        pd.read_csv(p, usecols=[schema.ID_COLUMN]) for p in snapshot_paths(data_dir) if p != exclude
    ]
    ids = pd.concat(frames)[schema.ID_COLUMN] if frames else pd.Series([], dtype="int64")
    return ids.astype("int64")


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.rebuild:
        written = rebuild()
        print(f"ingest: rebuilt {len(written)} snapshot(s): {', '.join(map(str, written)) or '-'}")
        return
    day = args.date or datetime.now(UTC).date()
    path = DATA_DIR / f"{day.isoformat()}.csv"
    try:
        if not args.no_dvc:
            # `dvc add` records data/ as it is: it must hold every snapshot data.dvc records.
            ensure()
        if args.source == "synthetic":
            batch = synthetic_batch(base_snapshot(), day, args.scenario, args.rows)
        else:
            extract = (
                read_file(args.path) if args.source == "file" else read_sql(args.url, args.query)
            )
            batch = conform(extract, known_ids(path))
        outcome = save(batch, path, args.force)
        if not args.no_dvc:
            dvc_add()
            recipe = {"source": args.source, "rows": len(batch)}
            if args.source == "synthetic":
                recipe["scenario"] = args.scenario
            record_recipe(path.name, recipe)
    except DataError as exc:
        sys.exit(f"ingest: {exc}")
    recorded = "" if args.no_dvc else "; data.dvc updated"
    print(f"ingest: {path} ({len(batch)} customers, source {args.source}): {outcome}{recorded}")


if __name__ == "__main__":
    main()
