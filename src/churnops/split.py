"""Stage `split`: a seeded train/test split, stratified on the target."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from churnops import schema
from churnops.config import DATASET, TEST_SET, TRAIN_SET, load_params


def split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(
        df, test_size=test_size, random_state=seed, stratify=df[schema.TARGET]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def main() -> None:
    params = load_params()
    train, test = split(
        pd.read_parquet(DATASET), params["split"]["test_size"], params["base"]["seed"]
    )
    train.to_parquet(TRAIN_SET, index=False)
    test.to_parquet(TEST_SET, index=False)
    print(f"split: {len(train)} train rows, {len(test)} test rows")


if __name__ == "__main__":
    main()
