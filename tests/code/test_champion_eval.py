"""Which snapshot the champion is judged on: the newest one that carries labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnops import schema
from churnops.retraining.champion import newest_labeled_snapshot
from churnops.snapshots import DataError, write_snapshot
from tests.support.frames import synthetic_snapshot


def test_the_newest_snapshot_with_labels_is_chosen_without_its_unlabeled_rows(tmp_path: Path):
    older, newer, newest = (synthetic_snapshot(40, seed) for seed in range(3))
    newer.loc[:9, schema.TARGET] = None  # labels still arriving for ten customers
    newest[schema.TARGET] = None  # no labels yet at all
    write_snapshot(older, tmp_path / "2026-10-01.csv")
    write_snapshot(newer, tmp_path / "2026-11-01.csv")
    write_snapshot(newest, tmp_path / "2026-12-01.csv")

    path, labeled = newest_labeled_snapshot(tmp_path)

    assert path.name == "2026-11-01.csv"
    assert len(labeled) == 30
    assert set(labeled[schema.TARGET]) <= set(schema.TARGET_VALUES)


def test_no_labeled_snapshot_is_an_error_that_says_so(tmp_path: Path):
    unlabeled = synthetic_snapshot(10)
    unlabeled[schema.TARGET] = None
    write_snapshot(unlabeled, tmp_path / "2026-12-01.csv")

    with pytest.raises(DataError, match="has labels"):
        newest_labeled_snapshot(tmp_path)
