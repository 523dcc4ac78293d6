"""`churnops ingest`: synthetic batches and drift scenarios, the label window, the file
source and its download bounds, validation before a snapshot is written.

The command itself, with real `dvc add`, a rebuild and the SQL source against a real
PostgreSQL, is tested in tests/e2e/registry/test_ingest_dvc.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from churnops import schema
from churnops.intake import sources
from churnops.intake.ingest import _parse, conform, save
from churnops.intake.synthetic import synthetic_batch
from churnops.snapshots import DataError, base_snapshot

DAY = date(2026, 11, 28)
LABELS = sources.window(date(2026, 11, 1), DAY)
MAX_NULLS = 0.01


@pytest.fixture(scope="module")
def telco() -> pd.DataFrame:
    return base_snapshot()


def month_to_month_share(df: pd.DataFrame) -> float:
    return float((df["contract"] == "Month-to-month").mean())


def churn_rate(df: pd.DataFrame) -> float:
    return float((df[schema.TARGET] == schema.POSITIVE_LABEL).mean())


def test_synthetic_batch_is_seeded_by_date_and_has_new_ids(telco: pd.DataFrame) -> None:
    batch = synthetic_batch(telco, DAY, rows=300)
    assert list(batch.columns) == list(schema.COLUMNS)
    assert len(batch) == 300
    assert batch[schema.ID_COLUMN].is_unique
    assert not batch[schema.ID_COLUMN].isin(telco[schema.ID_COLUMN]).any()
    assert batch.equals(synthetic_batch(telco, DAY, rows=300))
    next_day = synthetic_batch(telco, date(2026, 11, 29), rows=300)
    assert not batch.drop(columns=schema.ID_COLUMN).equals(next_day.drop(columns=schema.ID_COLUMN))
    assert not next_day[schema.ID_COLUMN].isin(batch[schema.ID_COLUMN]).any()


def test_price_rise_raises_charges_and_churn_of_month_to_month(telco: pd.DataFrame) -> None:
    calm = synthetic_batch(telco, DAY, "none", rows=2000)
    risen = synthetic_batch(telco, DAY, "price_rise", rows=2000)
    ratio = risen["monthly_charges"].mean() / calm["monthly_charges"].mean()
    assert 1.1 < ratio < 1.3
    assert risen["monthly_charges"].max() <= schema.BY_NAME["monthly_charges"].maximum
    monthly = risen["contract"] == "Month-to-month"
    assert (
        churn_rate(risen[monthly]) > churn_rate(calm[calm["contract"] == "Month-to-month"]) + 0.05
    )
    # Two-year customers keep their churn rate: the shift stays plausible.
    two_year = risen[risen["contract"] == "Two year"]
    assert churn_rate(two_year) < 0.1


def test_contract_mix_moves_customers_to_month_to_month(telco: pd.DataFrame) -> None:
    calm = synthetic_batch(telco, DAY, "none", rows=2000)
    mixed = synthetic_batch(telco, DAY, "contract_mix", rows=2000)
    assert month_to_month_share(calm) == pytest.approx(0.55, abs=0.04)
    assert month_to_month_share(mixed) == pytest.approx(0.8, abs=0.04)
    # Rows are drawn whole, so churn follows the contract: more month-to-month, more churn.
    assert churn_rate(mixed) > churn_rate(calm) + 0.05


def test_unknown_scenario_is_refused(telco: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown scenario 'winter'"):
        synthetic_batch(telco, DAY, "winter")


def extract(telco: pd.DataFrame, first_id: int, rows: int = 50) -> pd.DataFrame:
    """A warehouse-like extract: new ids, shuffled rows, labels arrived within the window,
    an extra column the schema lacks."""
    rows_ = telco.sample(rows, random_state=1).reset_index(drop=True)
    rows_[schema.ID_COLUMN] = range(first_id + rows - 1, first_id - 1, -1)
    return rows_.assign(label_arrived_at="2026-11-20T09:30:00Z", loaded_by="etl")


def test_the_label_window_is_half_open_in_utc() -> None:
    arrived = [
        "2026-11-01T00:00:00Z",  # the newest snapshot's date: in (the last one stopped before)
        "2026-10-31T23:59:59Z",
        "2026-11-27T23:59:59+00:00",
        "2026-11-28T00:00:00Z",  # the new snapshot's date: the next snapshot's
        "2026-11-27T23:30:00-01:00",  # 00:30 UTC on the 28th
        None,  # no label yet
    ]
    chunk = pd.DataFrame({"row": range(len(arrived)), sources.LABEL_ARRIVED: arrived})
    assert sources.in_window(chunk, LABELS)["row"].tolist() == [0, 2]
    assert str(LABELS) == "labels arrived from 2026-11-01 to before 2026-11-28"
    with pytest.raises(DataError, match="label_arrived_at: not an ISO 8601"):
        sources.in_window(chunk.assign(label_arrived_at="last tuesday"), LABELS)
    with pytest.raises(DataError, match="lacks the column label_arrived_at"):
        sources.in_window(chunk.drop(columns=sources.LABEL_ARRIVED), LABELS)


def test_file_sources_csv_and_parquet_conform_to_the_schema(
    telco: pd.DataFrame, tmp_path: Path
) -> None:
    frame = extract(telco, 9_000_001)
    frame.loc[:9, sources.LABEL_ARRIVED] = "2026-11-28T08:00:00Z"  # arrived after the window
    frame.to_csv(tmp_path / "batch.csv", index=False)
    frame.to_parquet(tmp_path / "batch.parquet")
    for path in (tmp_path / "batch.csv", tmp_path / "batch.parquet"):
        rows = sources.read_file(str(path), LABELS, chunk_rows=7, max_bytes=0, timeout_s=0)
        batch = conform(rows, telco[schema.ID_COLUMN])
        assert list(batch.columns) == list(schema.COLUMNS)
        assert batch[schema.ID_COLUMN].is_monotonic_increasing
        assert set(batch[schema.ID_COLUMN]) == set(frame[schema.ID_COLUMN][10:])
    with pytest.raises(DataError, match=r"\.csv or \.parquet"):
        sources.read_file(str(tmp_path / "batch.xlsx"), LABELS, 7, 0, 0)
    with pytest.raises(DataError, match="local path or an https:// URL, not ftp"):
        sources.read_file("ftp://host/batch.csv", LABELS, 7, 0, 0)


def test_conform_refuses_missing_columns_and_reused_ids(telco: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"lacks the column.*contract"):
        conform(extract(telco, 9_000_001).drop(columns="contract"), telco[schema.ID_COLUMN])
    reused = extract(telco, 7_000)  # ids 7000..7049 overlap the Telco ids (1..7043)
    with pytest.raises(DataError, match=r"44 customer_id value.*already in data/"):
        conform(reused, telco[schema.ID_COLUMN])
    twice = pd.concat([extract(telco, 9_000_001, 3)] * 2)
    with pytest.raises(DataError, match=r"3 customer_id value.*more than once"):
        conform(twice, telco[schema.ID_COLUMN])


class Extract(BaseHTTPRequestHandler):
    """Serves a CSV body of `size` bytes, slowly if asked."""

    size = 0
    pause = 0.0

    def do_GET(self) -> None:
        self.send_response(200 if self.path.endswith(".csv") else 404)
        self.end_headers()
        for _ in range(Extract.size // 1024):
            self.wfile.write(b"x" * 1024)
            threading.Event().wait(Extract.pause)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def extract_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Extract)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_download_is_bounded_in_size_and_time(extract_server: str, tmp_path: Path) -> None:
    target = tmp_path / "extract.csv"
    Extract.size, Extract.pause = 64 * 1024, 0.0
    sources.download(f"{extract_server}/x.csv", target, max_bytes=64 * 1024, timeout_s=10)
    assert target.stat().st_size == 64 * 1024
    with pytest.raises(DataError, match="larger than 65535 bytes"):
        sources.download(f"{extract_server}/x.csv", target, max_bytes=65535, timeout_s=10)
    Extract.pause = 0.05
    with pytest.raises(DataError, match=r"took longer than 0\.5 s"):
        sources.download(f"{extract_server}/x.csv", target, max_bytes=2**30, timeout_s=0.5)
    Extract.pause = 0.0
    with pytest.raises(DataError, match=r"file source http://127\.0\.0\.1/y\.parquet: HTTP 404"):
        sources.download(
            f"http://user:secret@{extract_server[7:]}/y.parquet?sig=abc", target, 2**30, 10
        )


def test_only_a_synthetic_batch_takes_a_drift_scenario() -> None:
    assert _parse(["--scenario", "price_rise"]).source == "synthetic"  # a drill
    assert _parse(["--scenario", "none"]).source is None  # the configured source
    with pytest.raises(SystemExit):
        _parse(["--source", "sql", "--scenario", "contract_mix"])
    with pytest.raises(SystemExit):
        _parse(["--source", "sql", "--path", "extract.csv"])


def test_a_snapshot_that_fails_validation_is_not_written(
    telco: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "2026-11-28.csv"
    batch = conform(extract(telco, 9_000_001), telco[schema.ID_COLUMN])
    batch.loc[3, "payment_method"] = "Bitcoin"
    with pytest.raises(DataError, match=r"column 'payment_method'.*Bitcoin") as refused:
        save(batch, path, MAX_NULLS)
    assert "nothing is written" in str(refused.value)
    assert not path.exists()


def test_a_published_snapshot_is_kept_or_refused_never_silently_replaced(
    telco: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "2026-11-28.csv"
    risen = synthetic_batch(telco, DAY, "price_rise", rows=50)
    assert save(risen, path, MAX_NULLS) == "written"
    first = path.read_bytes()
    again = save(synthetic_batch(telco, DAY, "price_rise", rows=50), path, MAX_NULLS)
    assert again.startswith("unchanged")
    with pytest.raises(DataError, match="exists with other contents"):
        save(synthetic_batch(telco, DAY, "none", rows=50), path, MAX_NULLS)
    assert path.read_bytes() == first
    calm = synthetic_batch(telco, DAY, "none", rows=50)
    assert save(calm, path, MAX_NULLS, force=True) == "written"
    assert path.read_bytes() != first


@pytest.mark.parametrize(
    "name", ["../escape.csv", "/etc/cron.d/x.csv", "sub/2026-11-02.csv", "2026-11-02.csv/..", 7]
)
def test_rebuild_writes_only_dated_snapshots_inside_data(name, tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    from churnops.intake.fetch import rebuild

    pointer = tmp_path / "data.dvc"
    recipe = {"source": "synthetic", "scenario": "none", "rows": 5}
    YAML().dump({"outs": [{"path": "data"}], "meta": {"snapshots": {name: recipe}}}, pointer)
    with pytest.raises(DataError, match="nothing is written outside data/"):
        rebuild(pointer, tmp_path / "data")
    assert sorted(p.name for p in tmp_path.rglob("*.csv")) == ["2026-11-01.csv"]  # the base only
