"""The model card: what models/model_card.json says about the model beside it.

Serving, batch scoring and champion evaluation all read the decision threshold from
here, and only from here: a card without a valid one is an error, never a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churnops.config import CARD_FILE, read_json

# The gate stages an install of models/ here and marks its commit point (gate.install).
INCOMING = ".incoming"
COMMITTED = "COMMITTED"


class CardError(ValueError):
    """The model card is missing or lacks what the model needs to be used."""


def read_card(model_dir: Path) -> dict[str, Any]:
    """The model card in `model_dir`."""
    path = model_dir / CARD_FILE
    if (model_dir / INCOMING / COMMITTED).exists():
        raise CardError(
            f"{model_dir}/ is in the middle of an install the gate committed: run "
            "`make pipeline` (the gate finishes it) before using the model"
        )
    try:
        card = read_json(path)
    except FileNotFoundError:
        raise CardError(f"{path} does not exist: run `make pipeline` or `dvc pull`") from None
    except ValueError as exc:
        raise CardError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(card, dict):
        raise CardError(f"{path} must hold a JSON object")
    return card


def decision_threshold(card: dict[str, Any]) -> float:
    """The probability at and above which the model predicts churn."""
    value = card.get("decision_threshold")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise CardError(
            f"the model card's decision_threshold is {value!r}, not a number in [0, 1]: "
            "the card does not come from this pipeline's export stage"
        )
    return float(value)
