"""Synthetic daily batches of new customers, for drills, demos and rebuilding data/.

A batch is resampled from the Telco data, seeded by its date and scenario only, so a
snapshot made from it can be rebuilt byte for byte on a machine without the DVC remote.
A scenario shifts the batch the way a known kind of drift would.
"""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd

from churnops import schema

SCENARIOS = ("none", "price_rise", "contract_mix")
DEFAULT_ROWS = 500
# Synthetic ids are YYYYMMDD * ID_STRIDE + n: unique per day, far above the Telco ids.
ID_STRIDE = 100_000
# price_rise: charges go up by this factor, and this share of month-to-month customers
# who would have stayed leave instead (a price rise drives churn where leaving is easy).
PRICE_FACTOR = 1.2
PRICE_EXTRA_CHURN = 0.15
# contract_mix: the batch's share of month-to-month contracts (about 55% in the Telco data).
MONTH_TO_MONTH_SHARE = 0.8


def _rng(day: date, scenario: str) -> np.random.Generator:
    """A generator seeded by the date and scenario only, so a rebuild gives the same batch."""
    digest = hashlib.sha256(f"churnops-ingest:{day.isoformat()}:{scenario}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def synthetic_batch(
    base: pd.DataFrame, day: date, scenario: str = "none", rows: int = DEFAULT_ROWS
) -> pd.DataFrame:
    """A day's new customers resampled from `base`, shifted as the drift scenario says.

    Rows are drawn whole, so features and label keep their joint distribution; only the
    scenario's shift moves it, and the price rise moves labels the plausible way.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    rng = _rng(day, scenario)
    weights = None
    if scenario == "contract_mix":
        monthly = (base["contract"] == "Month-to-month").to_numpy()
        weights = np.where(
            monthly,
            MONTH_TO_MONTH_SHARE / monthly.sum(),
            (1 - MONTH_TO_MONTH_SHARE) / (~monthly).sum(),
        )
    picked = rng.choice(len(base), size=rows, replace=True, p=weights)
    batch = base.iloc[picked].reset_index(drop=True).copy()
    if scenario == "price_rise":
        batch["monthly_charges"] = (batch["monthly_charges"] * PRICE_FACTOR).round(2)
        batch["total_charges"] = (batch["total_charges"] * PRICE_FACTOR).round(2)
        stays = (batch["contract"] == "Month-to-month") & (
            batch[schema.TARGET] != schema.POSITIVE_LABEL
        )
        leaves = stays & (rng.random(rows) < PRICE_EXTRA_CHURN)
        batch.loc[leaves, schema.TARGET] = schema.POSITIVE_LABEL
    first_id = int(day.strftime("%Y%m%d")) * ID_STRIDE + 1
    batch[schema.ID_COLUMN] = np.arange(first_id, first_id + rows, dtype="int64")
    return batch[list(schema.COLUMNS)]
