"""What goes into a model's params hash, and how the run that trained a model is found."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from churnops import card, lineage
from churnops.config import load_params


def test_model_params_are_those_of_the_stages_that_make_the_model(repo_root: Path) -> None:
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    upstream = {p for name in ("split", "train") for p in stages[name]["params"]}
    assert set(lineage.MODEL_PARAMS) == upstream
    assert set(lineage.MODEL_PARAMS) <= set(stages["export"]["params"])  # export embeds it


@pytest.mark.parametrize(
    ("group", "key", "value"),
    [("serve", "max_batch", 7), ("gate", "floors", {}), ("evaluate", "overfit_gap", 0.5)],
)
def test_params_that_do_not_make_the_model_leave_its_hash_alone(
    repo_root: Path, group: str, key: str, value: object
) -> None:
    params = load_params(repo_root / "params.yaml")
    changed = copy.deepcopy(params)
    changed[group][key] = value
    assert lineage.params_hash(changed) == lineage.params_hash(params)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("base", "seed"), 7),
        (("split", "test_size"), 0.3),
        (("split", "holdout"), "newest_snapshot"),
        (("train", "cv_folds"), 3),
    ],
)
def test_params_that_make_the_model_change_its_hash(
    repo_root: Path, path: tuple[str, str], value: object
) -> None:
    params = load_params(repo_root / "params.yaml")
    changed = copy.deepcopy(params)
    changed[path[0]][path[1]] = value
    assert lineage.params_hash(changed) != lineage.params_hash(params)


@pytest.mark.parametrize("threshold", [None, "0.5", True, 1.5, -0.1])
def test_a_card_without_a_valid_decision_threshold_is_an_error(threshold: object) -> None:
    with pytest.raises(card.CardError, match="decision_threshold"):
        card.decision_threshold({} if threshold is None else {"decision_threshold": threshold})
    assert card.decision_threshold({"decision_threshold": 0.4}) == 0.4


def test_a_missing_or_broken_card_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(card.CardError, match="make pipeline"):
        card.read_card(tmp_path)
    (tmp_path / "model_card.json").write_text("{not json")
    with pytest.raises(card.CardError, match="not valid JSON"):
        card.read_card(tmp_path)
