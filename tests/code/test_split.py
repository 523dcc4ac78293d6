"""Which rows test the candidate: a random share, or the newest snapshot (CT's holdout)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from churnops import schema, split
from churnops.snapshots import DataError, write_snapshot
from tests.support.frames import synthetic_snapshot


def snapshots_in(data_dir: Path, *sizes: int) -> pd.DataFrame:
    """Dated snapshots of these sizes with ids unique across them; all rows, in date order."""
    frames = []
    for day, rows in enumerate(sizes, start=1):
        frame = synthetic_snapshot(rows, seed=day)
        frame[schema.ID_COLUMN] += 1000 * day
        write_snapshot(frame, data_dir / f"2026-11-{day:02d}.csv")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_the_newest_snapshot_is_the_test_set_and_every_older_one_trains(tmp_path: Path) -> None:
    rows = snapshots_in(tmp_path, 300, 200, 50)
    train, test = split.hold_out(rows, split.newest_snapshot_ids(tmp_path))
    assert test[schema.ID_COLUMN].tolist() == rows[schema.ID_COLUMN].tolist()[500:]
    assert train[schema.ID_COLUMN].tolist() == rows[schema.ID_COLUMN].tolist()[:500]


def test_one_snapshot_leaves_nothing_to_train_on(tmp_path: Path) -> None:
    rows = snapshots_in(tmp_path, 100)
    with pytest.raises(DataError, match="no older snapshot"):
        split.hold_out(rows, split.newest_snapshot_ids(tmp_path))


def test_the_random_split_is_seeded_and_stratified(tmp_path: Path) -> None:
    rows = snapshots_in(tmp_path, 300, 200)
    train, test = split.split(rows, 0.2, seed=42)
    again, _ = split.split(rows, 0.2, seed=42)
    assert len(test) == 100 and train.equals(again)
    assert set(test[schema.ID_COLUMN]) & set(rows[schema.ID_COLUMN][400:])  # not by date
    share = (schema.labels(test).mean(), schema.labels(rows).mean())
    assert share[0] == pytest.approx(share[1], abs=0.01)
