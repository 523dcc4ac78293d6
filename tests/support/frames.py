"""Small in-memory data sets in the snapshot format, derived from the schema."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops import schema


def synthetic_snapshot(rows: int, seed: int = 0) -> pd.DataFrame:
    """Valid raw rows (as read from a snapshot CSV) with random values within the schema."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {schema.ID_COLUMN: np.arange(1, rows + 1)}
    for feature in schema.FEATURES:
        if feature.kind == "binary":
            columns[feature.name] = rng.integers(0, 2, rows)
        elif feature.kind == "numeric":
            high = min(feature.maximum, 200.0)
            columns[feature.name] = np.round(rng.uniform(feature.minimum, high, rows), 2)
        else:
            columns[feature.name] = rng.choice(feature.values, rows)
    columns[schema.TARGET] = rng.choice(schema.TARGET_VALUES, rows, p=[0.7, 0.3])
    return pd.DataFrame(columns)[list(schema.COLUMNS)]
