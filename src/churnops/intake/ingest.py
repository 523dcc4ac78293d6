"""`churnops ingest`: append a dated snapshot of newly labeled customers to data/ and `dvc add` it.

Where new data comes from is configuration: params.yaml `ingest.source`, or --source.
  sql        any database SQLAlchemy reaches: the query in `ingest.query` against the
             database CHURNOPS_INGEST_URL names (a SQLAlchemy URL; a secret, never a file)
  file       a CSV or Parquet extract: a path or an https:// URL (CHURNOPS_INGEST_URL or --path)
  synthetic  generated data, for drills and demos only: a batch resampled from the Telco
             data, seeded by the date and drift scenario, rebuildable byte for byte
A real source gives the customers whose label arrived from the date of data/'s newest
snapshot up to (not including) the new snapshot's date; when none did, nothing is written.
--scenario (other than none) makes a drill: a synthetic batch, whatever the configured
source. Every snapshot passes the validate stage's checks before it is written; one that
fails leaves data/ and data.dvc as they were.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from churnops import schema
from churnops.config import DATA_DIR, DATA_POINTER, load_params
from churnops.expectations import check
from churnops.intake import sources
from churnops.intake.fetch import ensure, rebuild
from churnops.intake.synthetic import DEFAULT_ROWS, SCENARIOS, synthetic_batch
from churnops.snapshots import DataError, base_snapshot, snapshot_paths, write_snapshot

SOURCES = ("sql", "file", "synthetic")


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


def refuse_invalid(staged: Path, max_null_fraction: float) -> None:
    """Raise unless the snapshot, read back as the validate stage reads it, passes its checks."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    violations = check(pd.read_csv(staged), min_rows=1, max_null_fraction=max_null_fraction)
    if violations:
        lines = "\n".join(f"  - {v}" for v in violations)
        raise DataError(
            f"the new snapshot breaks {len(violations)} expectation(s) of the validate stage; "
            f"nothing is written and data.dvc is unchanged:\n{lines}"
        )


def save(batch: pd.DataFrame, path: Path, max_null_fraction: float, force: bool = False) -> str:
    """Write the snapshot once it passes validation; an existing one is kept if identical and
    refused if different."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / path.name
        write_snapshot(batch, staged)
        refuse_invalid(staged, max_null_fraction)
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
    parser = argparse.ArgumentParser(
        prog="churnops ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--date", type=date.fromisoformat, help="snapshot date (default today, UTC)"
    )
    parser.add_argument(
        "--source",
        choices=SOURCES,
        help="sql or file: real data; synthetic: generated, for drills and demos only "
        "(default: params.yaml ingest.source)",
    )
    parser.add_argument(
        "--scenario", choices=SCENARIOS, help="a drill: a synthetic batch with this drift"
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="synthetic batch size")
    parser.add_argument(
        "--path",
        help=f"file source: a .csv or .parquet path or https:// URL (else ${sources.LOCATION_ENV})",
    )
    parser.add_argument("--force", action="store_true", help="replace a different snapshot")
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild missing snapshots that data.dvc records"
    )
    parser.add_argument("--no-dvc", action="store_true", help="write the file, skip `dvc add`")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    drill = args.scenario not in (None, "none")
    if drill and args.source not in (None, "synthetic"):
        parser.error(
            f"--scenario {args.scenario} drifts a synthetic batch, not the {args.source} source"
        )
    if args.path and args.source != "file":
        parser.error("--path goes with --source file")
    args.source = args.source or ("synthetic" if drill else None)
    return args


def known_ids(exclude: Path, data_dir: Path = DATA_DIR) -> pd.Series:
    """Customer ids in every snapshot but `exclude` (the one being written)."""
    frames = [
        pd.read_csv(p, usecols=[schema.ID_COLUMN]) for p in snapshot_paths(data_dir) if p != exclude
    ]
    ids = pd.concat(frames)[schema.ID_COLUMN] if frames else pd.Series([], dtype="int64")
    return ids.astype("int64")


def newest_snapshot_date(data_dir: Path = DATA_DIR) -> date:
    """The date of the newest snapshot in data/: real sources read what arrived after it."""
    paths = snapshot_paths(data_dir)
    if not paths:
        raise DataError(f"no snapshot in {data_dir}/: run `make data` first")
    try:
        return date.fromisoformat(paths[-1].stem)
    except ValueError:
        raise DataError(f"{paths[-1]}: a snapshot is named YYYY-MM-DD.csv") from None


def read_source(
    source: str, path: str | None, labels: sources.Window, settings: dict[str, Any]
) -> pd.DataFrame:
    """The new labeled rows of a real source, where the environment (or --path) says."""
    location = path or os.environ.get(sources.LOCATION_ENV, "").strip()
    if not location:
        what = "a SQLAlchemy URL" if source == "sql" else "a path or https:// URL"
        raise DataError(
            f"the {source} source reads what {sources.LOCATION_ENV} names ({what}), and it is "
            f"not set: export it (in CT: the repository secret {sources.LOCATION_ENV})"
        )
    if source == "sql":
        query = Path(settings["query"])
        if not query.is_file():
            raise DataError(f"params.yaml ingest.query names {query}, which does not exist")
        return sources.read_sql(location, query.read_text(), labels, settings["chunk_rows"])
    return sources.read_file(
        location,
        labels,
        settings["chunk_rows"],
        settings["max_download_mb"] * 2**20,
        settings["download_timeout_s"],
    )


def labeled_batch(
    source: str, path: str | None, day: date, target: Path, settings: dict[str, Any]
) -> tuple[pd.DataFrame, sources.Window]:
    """The customers whose label arrived since data/'s newest snapshot (maybe none)."""
    labels = sources.window(newest_snapshot_date(), day)
    extract = read_source(source, path, labels, settings)
    return (conform(extract, known_ids(target)) if len(extract) else extract), labels


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.rebuild:
        written = rebuild()
        print(f"ingest: rebuilt {len(written)} snapshot(s): {', '.join(map(str, written)) or '-'}")
        return
    params = load_params()
    source = args.source or params["ingest"]["source"]
    day = args.date or datetime.now(UTC).date()
    path = DATA_DIR / f"{day.isoformat()}.csv"
    try:
        if not args.no_dvc:
            # `dvc add` records data/ as it is: it must hold every snapshot data.dvc records.
            ensure()
        if source == "synthetic":
            recipe = {"scenario": args.scenario or "none"}
            batch = synthetic_batch(base_snapshot(), day, recipe["scenario"], args.rows)
        else:
            batch, labels = labeled_batch(source, args.path, day, path, params["ingest"])
            if batch.empty:
                print(
                    f"ingest: nothing new from the {source} source: no {labels}; "
                    "no snapshot written, data/ and data.dvc unchanged"
                )
                return
            recipe = {
                "labels_since": f"{labels.since:%Y-%m-%d}",
                "labels_until": f"{labels.until:%Y-%m-%d}",
            }
        outcome = save(batch, path, params["validate"]["max_null_fraction"], args.force)
        if not args.no_dvc:
            dvc_add()
            record_recipe(path.name, {"source": source, "rows": len(batch), **recipe})
    except DataError as exc:
        sys.exit(f"ingest: {exc}")
    recorded = "" if args.no_dvc else "; data.dvc updated"
    kind = f"source {source}" + (" (generated: a drill or demo)" if source == "synthetic" else "")
    print(f"ingest: {path} ({len(batch)} customers, {kind}): {outcome}{recorded}")


if __name__ == "__main__":
    main()
