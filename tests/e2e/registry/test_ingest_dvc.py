"""`churnops ingest` as CT runs it, in a temporary DVC repository, recorded by real `dvc add`.

The synthetic source (drills) is rebuilt byte for byte, which is how a machine without the
DVC remote gets it back. The SQL source reads a real PostgreSQL with a warehouse-like
schema through the committed query (sql/labeled_customers.sql): customers scored on some
day, their churn label arriving weeks later, some not yet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
import yaml

from churnops import schema
from churnops.snapshots import base_snapshot, write_snapshot
from tests.support.postgres import create_database, postgres_server
from tests.support.warehouse import Warehouse, at, scored_customers

URL_ENV = "CHURNOPS_INGEST_URL"


def ingest(repo: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != URL_ENV}
    if url is not None:
        env[URL_ENV] = url
    return subprocess.run(
        [sys.executable, "-m", "churnops.intake.ingest", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def dvc(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path, repo_root: Path) -> Path:
    """A DVC repository with the base snapshot recorded, params.yaml (small chunks, so a
    read takes several) and the query."""
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    params = (repo_root / "params.yaml").read_text()
    assert "chunk_rows: 50000" in params
    (repo / "params.yaml").write_text(params.replace("chunk_rows: 50000", "chunk_rows: 64"))
    shutil.copytree(repo_root / "sql", repo / "sql")
    dvc(repo, "init", "--no-scm", "-q")
    write_snapshot(base_snapshot(), repo / "data" / "2026-11-01.csv")
    dvc(repo, "add", "-q", "data")
    return repo


def test_cli_records_the_snapshot_in_dvc_and_rebuilds_it_byte_for_byte(repo: Path) -> None:
    done = ingest(repo, "--date", "2026-11-28", "--scenario", "price_rise", "--rows", "200")
    assert done.returncode == 0, done.stderr
    assert "generated: a drill or demo" in done.stdout
    snapshot = repo / "data" / "2026-11-28.csv"
    first = snapshot.read_bytes()
    assert pd.read_csv(snapshot).shape == (200, len(schema.COLUMNS))
    pointer = yaml.safe_load((repo / "data.dvc").read_text())
    assert pointer["outs"][0]["nfiles"] == 2
    assert pointer["meta"]["snapshots"]["2026-11-28.csv"] == {
        "source": "synthetic",
        "scenario": "price_rise",
        "rows": 200,
    }

    # A machine without the DVC remote: the snapshots are gone and rebuilt from data.dvc.
    for path in (repo / "data").iterdir():
        path.unlink()
    rebuilt = ingest(repo, "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert snapshot.read_bytes() == first
    assert "changed" not in dvc(repo, "status", "data.dvc")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def snapshot_ids(repo: Path, day: str) -> set[int]:
    return set(pd.read_csv(repo / "data" / f"{day}.csv")[schema.ID_COLUMN])


def test_sql_source_takes_each_label_once_when_it_arrives(server: str, repo: Path) -> None:
    customers = scored_customers(300, seed=3)
    warehouse = Warehouse(create_database(server, "labels_arrive"), customers)
    ids = customers[schema.ID_COLUMN]
    early, boundary, late, unlabeled = ids[:200], ids[200:201], ids[201:260], ids[260:]
    # Labels arrive from the 8th to the 24th; one lands at midnight of the first ingest's date.
    warehouse.label(early, [at("2026-11-08") + timedelta(hours=2 * i) for i in range(200)])
    warehouse.label(boundary, at("2026-11-28"))

    first = ingest(repo, "--source", "sql", "--date", "2026-11-28", url=warehouse.url)
    assert first.returncode == 0, first.stderr
    assert "200 customers, source sql" in first.stdout
    snapshot = pd.read_csv(repo / "data" / "2026-11-28.csv")
    assert list(snapshot.columns) == list(schema.COLUMNS)
    assert set(snapshot[schema.ID_COLUMN]) == set(early)
    expected = customers.set_index(schema.ID_COLUMN).loc[snapshot[schema.ID_COLUMN]]
    assert (snapshot[schema.TARGET].to_numpy() == expected[schema.TARGET].to_numpy()).all()
    assert (snapshot["monthly_charges"].to_numpy() == expected["monthly_charges"].to_numpy()).all()
    pointer = yaml.safe_load((repo / "data.dvc").read_text())
    assert pointer["outs"][0]["nfiles"] == 2
    assert pointer["meta"]["snapshots"]["2026-11-28.csv"] == {
        "source": "sql",
        "rows": 200,
        "labels_since": "2026-11-01",
        "labels_until": "2026-11-28",
    }
    assert "changed" not in dvc(repo, "status", "data.dvc")

    # Nothing has arrived since: a no-op that says so, not an empty snapshot.
    recorded = (repo / "data.dvc").read_bytes()
    again = ingest(repo, "--source", "sql", "--date", "2026-11-28", url=warehouse.url)
    assert again.returncode == 0, again.stderr
    assert "nothing new from the sql source" in again.stdout
    assert (repo / "data.dvc").read_bytes() == recorded
    assert sorted(p.name for p in (repo / "data").iterdir()) == ["2026-11-01.csv", "2026-11-28.csv"]

    # Later labels arrive during the 28th; the next day's ingest takes them, once.
    warehouse.label(late, at("2026-11-28", hour=10))
    second = ingest(repo, "--source", "sql", "--date", "2026-11-29", url=warehouse.url)
    assert second.returncode == 0, second.stderr
    assert snapshot_ids(repo, "2026-11-29") == set(boundary) | set(late)
    third = ingest(repo, "--source", "sql", "--date", "2026-11-30", url=warehouse.url)
    assert "nothing new" in third.stdout, third.stdout + third.stderr
    assert not (repo / "data" / "2026-11-30.csv").exists()
    ingested = snapshot_ids(repo, "2026-11-28") | snapshot_ids(repo, "2026-11-29")
    assert ingested.isdisjoint(unlabeled) and len(ingested) == 260

    # The pipeline's own validate stage accepts data/ as ingested.
    validate = subprocess.run(
        [sys.executable, "-m", "churnops.validate"], cwd=repo, capture_output=True, text=True
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_a_bad_row_is_refused_before_anything_is_written(server: str, repo: Path) -> None:
    customers = scored_customers(50, seed=4)
    customers.loc[7, "contract"] = "Weekly"
    warehouse = Warehouse(create_database(server, "bad_row"), customers)
    warehouse.label(customers[schema.ID_COLUMN], at("2026-11-20"))
    recorded = (repo / "data.dvc").read_bytes()

    done = ingest(repo, "--source", "sql", "--date", "2026-11-28", url=warehouse.url)
    assert done.returncode != 0
    assert "column 'contract'" in done.stderr and "Weekly" in done.stderr, done.stderr
    assert "nothing is written" in done.stderr
    assert (repo / "data.dvc").read_bytes() == recorded
    assert [p.name for p in (repo / "data").iterdir()] == ["2026-11-01.csv"]


def test_wrong_credentials_name_the_source_not_the_password(server: str, repo: Path) -> None:
    url = create_database(server, "credentials")
    password = sa.make_url(url).password
    wrong = sa.make_url(url).set(password="not-the-password-7f3a")
    done = ingest(
        repo, "--source", "sql", "--date", "2026-11-28", url=wrong.render_as_string(False)
    )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert f"sql source {wrong.render_as_string(hide_password=True)}" in output, output
    assert "password authentication failed" in output
    assert password not in output and "not-the-password-7f3a" not in output
    with pytest.raises(psycopg.OperationalError):  # the server really refused it
        psycopg.connect(wrong.set(drivername="postgresql").render_as_string(False))


def test_an_unset_source_url_is_named(repo: Path) -> None:
    done = ingest(repo, "--source", "sql", "--date", "2026-11-28")
    assert done.returncode != 0
    assert f"{URL_ENV} names" in done.stderr and "not set" in done.stderr, done.stderr
    assert [p.name for p in (repo / "data").iterdir()] == ["2026-11-01.csv"]
