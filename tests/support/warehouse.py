"""A warehouse of scored customers in PostgreSQL, their churn labels arriving weeks later.

The schema `churnops ingest --source sql` reads through the committed query
(sql/labeled_customers.sql): `customers` as the model scored them (predicted_on), and
`churn_labels` getting a row when the outcome is known (label_arrived_at).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import sqlalchemy as sa

from churnops import schema
from churnops.intake.synthetic import synthetic_batch
from churnops.snapshots import base_snapshot

# The warehouse: features as scored (predicted_on), labels in their own table when known.
TABLES = """
CREATE TABLE customers (
    customer_id bigint PRIMARY KEY,
    predicted_on date NOT NULL,
    female smallint NOT NULL, senior_citizen smallint NOT NULL,
    partner smallint NOT NULL, dependents smallint NOT NULL, tenure integer NOT NULL,
    phone_service smallint NOT NULL, multiple_lines text NOT NULL,
    internet_service text NOT NULL, online_security text NOT NULL,
    online_backup text NOT NULL, device_protection text NOT NULL,
    tech_support text NOT NULL, streaming_tv text NOT NULL, streaming_movies text NOT NULL,
    contract text NOT NULL, paperless_billing smallint NOT NULL,
    payment_method text NOT NULL,
    monthly_charges numeric(8, 2) NOT NULL, total_charges numeric(10, 2)
);
CREATE TABLE churn_labels (
    customer_id bigint PRIMARY KEY REFERENCES customers,
    churned boolean NOT NULL,
    label_arrived_at timestamptz NOT NULL
);
"""
FIRST_ID = 30_000_001
SCORED = pd.date_range("2026-11-05", "2026-11-20", freq="D")


class Warehouse:
    """A database of scored customers; `label(...)` is the outcome arriving for some."""

    def __init__(self, url: str, customers: pd.DataFrame) -> None:
        self.url, self.customers = url, customers
        self.engine = sa.create_engine(url)
        with self.engine.begin() as connection:
            connection.exec_driver_sql(TABLES)
        rows = customers.drop(columns=schema.TARGET).assign(
            predicted_on=[SCORED[i % len(SCORED)].date() for i in range(len(customers))]
        )
        rows.to_sql("customers", self.engine, if_exists="append", index=False)

    def label(self, ids: pd.Series, arrived_at: datetime | list[datetime]) -> None:
        known = self.customers.set_index(schema.ID_COLUMN).loc[ids, schema.TARGET]
        labels = pd.DataFrame(
            {
                schema.ID_COLUMN: ids.to_numpy(),
                "churned": (known == schema.POSITIVE_LABEL).to_numpy(),
                "label_arrived_at": arrived_at,
            }
        )
        labels.to_sql("churn_labels", self.engine, if_exists="append", index=False)


def scored_customers(rows: int, seed: int) -> pd.DataFrame:
    """Telco customers under new ids, as a day's scored customers would look."""
    customers = base_snapshot().sample(rows, random_state=seed).reset_index(drop=True)
    customers[schema.ID_COLUMN] = range(FIRST_ID, FIRST_ID + rows)
    return customers


def drifted_customers(rows: int, day: date) -> pd.DataFrame:
    """Customers after a price rise (the drill's drift), under new ids, as scored on `day`."""
    customers = synthetic_batch(base_snapshot(), day, "price_rise", rows)
    customers[schema.ID_COLUMN] = range(FIRST_ID, FIRST_ID + rows)
    return customers


def at(day: str, hour: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)
