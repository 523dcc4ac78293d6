"""The real sources of `churnops ingest`: a SQL database, or a CSV/Parquet file or URL.

A source yields customers whose label has arrived, with the time it arrived in the column
`label_arrived_at`. Ingest keeps the rows whose label arrived in a window: from the date
of the newest snapshot in data/ up to (not including) the new snapshot's date. Windows
meet end to end, so a rerun reads nothing twice and a late label comes in exactly once,
with the first snapshot after it arrived. Rows are read in chunks; for SQL the window is
applied in the database, so memory holds the new rows, not the table.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pandas as pd

from churnops.snapshots import DataError

if TYPE_CHECKING:
    import sqlalchemy

LABEL_ARRIVED = "label_arrived_at"
LOCATION_ENV = "CHURNOPS_INGEST_URL"  # a secret: the SQLAlchemy URL, or the file's path/URL
FILE_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class Window:
    """Labels that arrived at or after `since` and before `until` (UTC)."""

    since: datetime
    until: datetime

    def __str__(self) -> str:
        return f"labels arrived from {self.since:%Y-%m-%d} to before {self.until:%Y-%m-%d}"


def window(newest: date, day: date) -> Window:
    """The window of a snapshot dated `day` when data/'s newest snapshot is dated `newest`."""
    since, until = (datetime(d.year, d.month, d.day, tzinfo=UTC) for d in (newest, day))
    return Window(since, until)


def labeled_rows(query: str, labels: Window) -> sqlalchemy.Select:
    """The query's rows whose label arrived in the window, as a statement any dialect runs."""
    import sqlalchemy as sa

    arrived = sa.column(LABEL_ARRIVED, sa.DateTime(timezone=True))
    source = sa.text(query.strip().rstrip(";")).columns(arrived).subquery("source")
    return (
        sa.select(sa.text("*"))
        .select_from(source)
        .where(source.c[LABEL_ARRIVED] >= labels.since, source.c[LABEL_ARRIVED] < labels.until)
    )


def read_sql(url: str, query: str, labels: Window, chunk_rows: int) -> pd.DataFrame:
    """The new labeled rows from the database at `url`, streamed in chunks.

    Errors name the database without its password (the URL is a secret).
    """
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DataError(
            f"{LOCATION_ENV} is not a SQLAlchemy URL (dialect+driver://user:password@host/db)"
        ) from None
    where = parsed.render_as_string(hide_password=True)
    try:
        engine = sa.create_engine(parsed)
    except sa.exc.ArgumentError as exc:  # no such dialect or driver
        raise DataError(f"sql source {where}: {exc}") from None
    try:
        with engine.connect() as connection:
            streaming = connection.execution_options(stream_results=True)
            chunks = pd.read_sql(labeled_rows(query, labels), streaming, chunksize=chunk_rows)
            return _concat(chunks)
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        if parsed.password:  # drivers do not echo it; should one, it stays hidden
            secret = re.escape(str(parsed.password))
            reason = re.sub(rf"(?<!\w){secret}(?!\w)", "***", reason)
        raise DataError(f"sql source {where}: {reason}") from None
    finally:
        engine.dispose()


def read_file(
    location: str, labels: Window, chunk_rows: int, max_bytes: int, timeout_s: float
) -> pd.DataFrame:
    """The new labeled rows of a CSV or Parquet file, a local path or an https:// URL."""
    parts = urlsplit(location)
    suffix = Path(parts.path).suffix
    if suffix not in FILE_SUFFIXES:
        raise DataError(f"the file source reads .csv or .parquet files, not {_public(location)}")
    if parts.scheme == "https":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"extract{suffix}"
            download(location, path, max_bytes, timeout_s)
            return _concat(in_window(chunk, labels) for chunk in _chunks(path, chunk_rows))
    if parts.scheme:
        raise DataError(
            f"the file source reads a local path or an https:// URL, not {parts.scheme}"
        )
    path = Path(location)
    if not path.is_file():
        raise DataError(f"file source {path}: no such file")
    return _concat(in_window(chunk, labels) for chunk in _chunks(path, chunk_rows))


def download(url: str, path: Path, max_bytes: int, timeout_s: float) -> None:
    """Fetch `url` into `path`, refusing more than `max_bytes` or longer than `timeout_s`."""
    import httpx

    where, deadline = _public(url), time.monotonic() + timeout_s
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True) as response:
            if response.status_code != 200:
                raise DataError(f"file source {where}: HTTP {response.status_code}")
            size = 0
            with path.open("wb") as out:
                for block in response.iter_bytes():
                    size += len(block)
                    if size > max_bytes:
                        raise DataError(f"file source {where}: larger than {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise DataError(f"file source {where}: took longer than {timeout_s} s")
                    out.write(block)
    except httpx.HTTPError as exc:
        raise DataError(f"file source {where}: {type(exc).__name__}: {exc}") from None


def in_window(chunk: pd.DataFrame, labels: Window) -> pd.DataFrame:
    """The rows of a file's chunk whose label arrived in the window (none yet: left out)."""
    if LABEL_ARRIVED not in chunk.columns:
        raise DataError(f"the source lacks the column {LABEL_ARRIVED} (when each label arrived)")
    try:
        arrived = pd.to_datetime(chunk[LABEL_ARRIVED], utc=True, format="ISO8601")
    except (TypeError, ValueError):
        raise DataError(
            f"column {LABEL_ARRIVED}: not an ISO 8601 date and time in every row"
        ) from None
    return chunk[(arrived >= labels.since) & (arrived < labels.until)]


def _chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if path.suffix == ".csv":
        yield from pd.read_csv(path, chunksize=chunk_rows)
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        yield batch.to_pandas()


def _concat(chunks: Iterator[pd.DataFrame]) -> pd.DataFrame:
    frames = [chunk for chunk in chunks if len(chunk)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _public(location: str) -> str:
    """A location without what may be secret in it (user, password, query string)."""
    parts = urlsplit(location)
    if not parts.scheme:
        return location
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
