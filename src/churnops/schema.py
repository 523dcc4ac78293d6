"""The one source of truth for the data: feature names, kinds, allowed values and target.

Data checks, the sklearn pipeline, the ONNX input types, the onnxruntime feed and the
API's request model are all derived from this module, so another tabular data set is
a change here and in params.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # serving imports this module and must not need pandas
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
        out[name] = df[name].astype(object)
    return out[list(FEATURE_NAMES)]


def labels(df: pd.DataFrame) -> pd.Series:
    """The target as 0/1 (1 = churned)."""
    return (df[TARGET] == POSITIVE_LABEL).astype("int64")
