"""`churnops ingest`: deterministic synthetic batches, drift scenarios, file and SQL sources.

The command itself, with real `dvc add` and a rebuild, is tested in
tests/e2e/registry/test_ingest_dvc.py.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from churnops import schema
from churnops.intake.ingest import conform, read_file, read_sql, save
from churnops.intake.synthetic import synthetic_batch
from churnops.snapshots import DataError, base_snapshot

DAY = date(2026, 11, 28)


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
    """A warehouse-like extract: new ids, shuffled rows, an extra column the schema lacks."""
    rows_ = telco.sample(rows, random_state=1).reset_index(drop=True)
    rows_[schema.ID_COLUMN] = range(first_id + rows - 1, first_id - 1, -1)
    return rows_.assign(loaded_at="2026-11-28T02:00:00Z")


def test_file_sources_csv_and_parquet_conform_to_the_schema(
    telco: pd.DataFrame, tmp_path: Path
) -> None:
    frame = extract(telco, 9_000_001)
    frame.to_csv(tmp_path / "batch.csv", index=False)
    frame.to_parquet(tmp_path / "batch.parquet")
    for path in (tmp_path / "batch.csv", tmp_path / "batch.parquet"):
        batch = conform(read_file(path), telco[schema.ID_COLUMN])
        assert list(batch.columns) == list(schema.COLUMNS)
        assert batch[schema.ID_COLUMN].is_monotonic_increasing
        assert len(batch) == 50
    with pytest.raises(DataError, match=r"\.csv or \.parquet"):
        read_file(tmp_path / "batch.xlsx")


def test_conform_refuses_missing_columns_and_reused_ids(telco: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"lacks the column.*contract"):
        conform(extract(telco, 9_000_001).drop(columns="contract"), telco[schema.ID_COLUMN])
    reused = extract(telco, 7_000)  # ids 7000..7049 overlap the Telco ids (1..7043)
    with pytest.raises(DataError, match=r"44 customer_id value.*already in data/"):
        conform(reused, telco[schema.ID_COLUMN])
    twice = pd.concat([extract(telco, 9_000_001, 3)] * 2)
    with pytest.raises(DataError, match=r"3 customer_id value.*more than once"):
        conform(twice, telco[schema.ID_COLUMN])


def test_sql_source_reads_a_query(telco: pd.DataFrame, tmp_path: Path) -> None:
    database = tmp_path / "warehouse.db"
    with sqlite3.connect(database) as connection:
        extract(telco, 9_100_001).to_sql("new_customers", connection, index=False)
    query = "SELECT * FROM new_customers WHERE tenure >= 12"
    batch = conform(read_sql(f"sqlite:///{database}", query), telco[schema.ID_COLUMN])
    assert len(batch) == int((extract(telco, 9_100_001)["tenure"] >= 12).sum()) > 0
    assert batch["tenure"].min() >= 12


def test_a_published_snapshot_is_kept_or_refused_never_silently_replaced(
    telco: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "2026-11-28.csv"
    risen = synthetic_batch(telco, DAY, "price_rise", rows=50)
    assert save(risen, path) == "written"
    first = path.read_bytes()
    assert save(synthetic_batch(telco, DAY, "price_rise", rows=50), path).startswith("unchanged")
    with pytest.raises(DataError, match="exists with other contents"):
        save(synthetic_batch(telco, DAY, "none", rows=50), path)
    assert path.read_bytes() == first
    assert save(synthetic_batch(telco, DAY, "none", rows=50), path, force=True) == "written"
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
