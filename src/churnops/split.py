"""Stage `split`: the test set the candidate is scored on, and the rows it trains on.

`split.holdout` says which: `random`, a seeded share of all rows stratified on the target
(a pull request's split, the same rows for the same data); or `newest_snapshot`, the
newest snapshot in data/, training on every older one (continuous training: a holdout
that neither the champion nor the candidate has trained on, where the gate scores both).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from churnops import schema, snapshots
from churnops.config import (
    DATA_DIR,
    DATASET,
    HOLDOUTS,
    NEWEST_SNAPSHOT,
    TEST_SET,
    TRAIN_SET,
    load_params,
)


def split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(
        df, test_size=test_size, random_state=seed, stratify=df[schema.TARGET]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def hold_out(df: pd.DataFrame, held_out_ids: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on every customer but the held-out ones, test on those (in data order)."""
    held_out = df[schema.ID_COLUMN].isin(held_out_ids)
    if held_out.all():
        raise snapshots.DataError(
            "split.holdout is newest_snapshot, but data/ has no older snapshot to train on"
        )
    return df[~held_out].reset_index(drop=True), df[held_out].reset_index(drop=True)


def newest_snapshot_ids(data_dir: Path = DATA_DIR) -> pd.Series:
    """The customers of the newest snapshot in data/."""
    newest = snapshots.snapshot_paths(data_dir)[-1]
    return pd.read_csv(newest, usecols=[schema.ID_COLUMN])[schema.ID_COLUMN]


def main() -> None:
    params = load_params()
    cfg = params["split"]
    if cfg["holdout"] not in HOLDOUTS:
        sys.exit(f"split: split.holdout is {cfg['holdout']!r}; choose one of {HOLDOUTS}")
    df = pd.read_parquet(DATASET)
    try:
        if cfg["holdout"] == NEWEST_SNAPSHOT:
            train, test = hold_out(df, newest_snapshot_ids())
        else:
            train, test = split(df, cfg["test_size"], params["base"]["seed"])
    except snapshots.DataError as exc:
        sys.exit(f"split: {exc}")
    train.to_parquet(TRAIN_SET, index=False)
    test.to_parquet(TEST_SET, index=False)
    print(f"split ({cfg['holdout']}): {len(train)} train rows, {len(test)} test rows")


if __name__ == "__main__":
    main()
