"""The one source of truth for the data: feature names, kinds, allowed values and target.

Data checks, the sklearn pipeline, the ONNX input types, the onnxruntime feed and the
API's request model are all derived from this module, so another tabular data set is
a change here and in params.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # serving imports this module and must not need pandas
    from collections.abc import Iterable
    from typing import Any

    import pandas as pd

Kind = Literal["binary", "numeric", "categorical"]


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Kind
    description: str
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False

    @property
    def is_categorical(self) -> bool:
        return self.kind == "categorical"


_NO_YES = ("No", "Yes")
_INTERNET_ADDON = ("No", "Yes", "No internet service")


def _binary(name: str, description: str) -> Feature:
    return Feature(name, "binary", description, minimum=0, maximum=1)


def _addon(name: str, description: str) -> Feature:
    return Feature(name, "categorical", description, values=_INTERNET_ADDON)


FEATURES: tuple[Feature, ...] = (
    _binary("female", "1 if the customer is female"),
    _binary("senior_citizen", "1 if the customer is 65 or older"),
    _binary("partner", "1 if the customer has a partner"),
    _binary("dependents", "1 if the customer has dependents"),
    Feature("tenure", "numeric", "months with the company", minimum=0, maximum=120),
    _binary("phone_service", "1 if the customer has phone service"),
    Feature(
        "multiple_lines",
        "categorical",
        "several phone lines",
        values=("No", "Yes", "No phone service"),
    ),
    Feature(
        "internet_service",
        "categorical",
        "internet service provider",
        values=("DSL", "Fiber optic", "No"),
    ),
    _addon("online_security", "online security add-on"),
    _addon("online_backup", "online backup add-on"),
    _addon("device_protection", "device protection add-on"),
    _addon("tech_support", "tech support add-on"),
    _addon("streaming_tv", "streaming TV add-on"),
    _addon("streaming_movies", "streaming movies add-on"),
    Feature(
        "contract",
        "categorical",
        "contract term",
        values=("Month-to-month", "One year", "Two year"),
    ),
    _binary("paperless_billing", "1 if the customer has paperless billing"),
    Feature(
        "payment_method",
        "categorical",
        "payment method",
        values=(
            "Bank transfer (automatic)",
            "Credit card (automatic)",
            "Electronic check",
            "Mailed check",
        ),
    ),
    Feature("monthly_charges", "numeric", "monthly charge in USD", minimum=0, maximum=1000),
    Feature(
        "total_charges",
        "numeric",
        "total charged to date in USD (missing for new customers)",
        minimum=0,
        maximum=100_000,
        nullable=True,
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if not f.is_categorical)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.is_categorical)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

ID_COLUMN = "customer_id"
TARGET = "churn"
TARGET_VALUES: tuple[str, str] = _NO_YES
POSITIVE_LABEL = "Yes"
COLUMNS: tuple[str, ...] = (ID_COLUMN, *FEATURE_NAMES, TARGET)

# Groups whose outcomes the fairness checks compare.
SENSITIVE_FEATURES: tuple[str, ...] = ("female", "senior_citizen")


def features_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns with the dtypes the pipeline was trained on."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    for name in NUMERIC_FEATURES:
        out[name] = df[name].astype("float64")
    for name in CATEGORICAL_FEATURES:
        # Through a categorical, every cell refers to one of a column's few strings instead
        # of holding its own Python str: 10M customers take 1 GB here, not 8.
        out[name] = df[name].astype("category").astype(object)
    return out[list(FEATURE_NAMES)]


def require_features(columns: Iterable[str], where: str) -> None:
    """Raise ValueError naming every feature that `where` lacks."""
    present = set(columns)
    missing = [name for name in FEATURE_NAMES if name not in present]
    if missing:
        raise ValueError(f"{where} has no column(s) {', '.join(missing)}")


def feature_columns(df: pd.DataFrame) -> dict[str, list[Any]]:
    """The model's inputs as one value list per feature (what the predictor takes)."""
    features = features_frame(df)
    return {name: features[name].tolist() for name in FEATURE_NAMES}


def request_columns(df: pd.DataFrame) -> dict[str, list[Any]]:
    """Feature values as a JSON request carries them: gaps as None, 0/1 flags as ints.

    (A flag column with a gap in it is read as floats; its 0.0/1.0 are still flags.)
    """
    import numpy as np

    columns: dict[str, list[Any]] = {}
    for feature in FEATURES:
        values, missing = df[feature.name].tolist(), df[feature.name].isna().tolist()
        if df[feature.name].dtype == object:  # may hold numpy scalars: make them Python values
            values = [v.item() if isinstance(v, np.generic) else v for v in values]
        if feature.kind == "binary":
            values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
        columns[feature.name] = [None if gap else v for v, gap in zip(values, missing, strict=True)]
    return columns


def records_of(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Per-feature columns as one dict per customer, in row order."""
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def labels(df: pd.DataFrame) -> pd.Series:
    """The target as 0/1 (1 = churned)."""
    return (df[TARGET] == POSITIVE_LABEL).astype("int64")
