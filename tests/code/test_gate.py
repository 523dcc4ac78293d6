"""The gate's rules: floors, ceilings, parity and no regression against the champion,
on the champion's card (a random split) or on the same holdout rows (newest snapshot)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from churnops import card, comparison, gate

CFG = {
    "floors": {"roc_auc": 0.8},
    "ceilings": {"brier": 0.2, "demographic_parity_difference": 0.3},
    "max_regression": {"roc_auc": 0.01, "demographic_parity_difference": 0.02},
}
CARD = {
    "model_sha256": "a" * 64,
    "metrics": {"roc_auc": 0.85, "brier": 0.14, "demographic_parity_difference": 0.2},
    "parity": {"max_abs_diff": 1e-7, "label_agreement": 1.0},
}


def _failed(candidate: dict, champion: dict | None) -> list[str]:
    return [r["rule"] for r in gate.judge(candidate, champion, CFG, 1e-4) if not r["passed"]]


def _with(**metrics: float) -> dict:
    card = copy.deepcopy(CARD)
    card["metrics"].update(metrics)
    return card


def test_good_candidate_without_champion_passes() -> None:
    rules = gate.judge(CARD, None, CFG, 1e-4)
    assert all(r["passed"] for r in rules)
    assert any("(none yet)" in r["reason"] for r in rules)


def test_floor_and_ceiling_failures_are_named() -> None:
    assert _failed(_with(roc_auc=0.79), None) == ["roc_auc >= 0.8"]
    assert _failed(_with(brier=0.25), None) == ["brier <= 0.2"]
    (rule,) = [r for r in gate.judge(_with(brier=0.25), None, CFG, 1e-4) if not r["passed"]]
    assert rule["reason"] == "FAILED: brier is 0.2500, must be <= 0.2000"


def test_parity_failure() -> None:
    card = copy.deepcopy(CARD)
    card["parity"] = {"max_abs_diff": 0.01, "label_agreement": 0.999}
    assert _failed(card, None) == ["parity.max_abs_diff <= 0.0001", "parity.label_agreement >= 1"]


def test_baseline_is_the_champion_or_what_the_champion_beat() -> None:
    champion = _with(roc_auc=0.9) | {"model_sha256": "c" * 64}
    assert gate.baseline_of(CARD, None) is None
    assert gate.baseline_of(CARD, champion) == {
        "model_sha256": "c" * 64,
        "metrics": champion["metrics"],
    }
    released = CARD | {"gated_against": {"model_sha256": "d" * 64, "metrics": {}}}
    assert gate.baseline_of(CARD, released)["model_sha256"] == "d" * 64


def test_regression_respects_direction_and_tolerance() -> None:
    champion = _with(roc_auc=0.86, demographic_parity_difference=0.15)
    # 0.85 is within 0.01 of 0.86; a fairness gap of 0.2 is 0.05 worse than 0.15.
    failed = _failed(CARD, champion)
    assert failed == ["demographic_parity_difference <= champion 0.1500 + 0.02"]
    assert "roc_auc >= champion" in _failed(_with(roc_auc=0.84), champion)[0]


def test_release_keeps_the_champion_card_unless_given_one(tmp_path: Path) -> None:
    candidate, models = tmp_path / "candidate", tmp_path / "models"
    candidate.mkdir()
    for name in ("model.onnx", "reference_profile.json"):
        (candidate / name).write_text(f"new {name}")
    models.mkdir()
    (models / "model_card.json").write_text("champion card")
    gate.install(candidate, models, None)
    assert (models / "model.onnx").read_text() == "new model.onnx"
    assert (models / "model_card.json").read_text() == "champion card"
    gate.install(candidate, models, {"model_sha256": "b" * 64})
    assert json.loads((models / "model_card.json").read_text()) == {"model_sha256": "b" * 64}
    assert sorted(p.name for p in models.iterdir()) == [
        "model.onnx",
        "model_card.json",
        "reference_profile.json",
    ]


def _models_with_champion(tmp_path: Path) -> tuple[Path, Path]:
    candidate, models = tmp_path / "candidate", tmp_path / "models"
    candidate.mkdir()
    models.mkdir()
    for name in ("model.onnx", "reference_profile.json"):
        (candidate / name).write_text(f"new {name}")
        (models / name).write_text(f"old {name}")
    (models / "model_card.json").write_text('{"model_sha256": "old"}')
    return candidate, models


def _contents(models: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in models.iterdir() if p.is_file()}


@pytest.mark.parametrize("crash_after", ["copyfile", "write_json", "fsync"])
def test_a_crash_before_the_commit_point_leaves_models_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_after: str
) -> None:
    candidate, models = _models_with_champion(tmp_path)
    before = _contents(models)
    target = {"copyfile": gate.shutil, "write_json": gate, "fsync": gate.os}[crash_after]

    def crash(*args, **kwargs):
        raise OSError("the machine went away")

    monkeypatch.setattr(target, crash_after, crash)
    with pytest.raises(OSError):
        gate.install(candidate, models, {"model_sha256": "new"})
    monkeypatch.undo()
    gate.finish_install(models)  # what the next gate run (or reader) does first
    assert _contents(models) == before
    assert not (models / ".incoming").exists()


def test_a_crash_after_the_commit_point_is_completed_and_readers_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    candidate, models = _models_with_champion(tmp_path)
    moved: list[str] = []
    replace = gate.os.replace

    def crash_after_one_move(src, dst):
        replace(src, dst)
        if Path(dst).parent == models:
            moved.append(Path(dst).name)
            raise OSError("the machine went away")

    monkeypatch.setattr(gate.os, "replace", crash_after_one_move)
    with pytest.raises(OSError):
        gate.install(candidate, models, {"model_sha256": "new"})
    monkeypatch.undo()
    assert len(moved) == 1  # models/ now mixes old and new files...
    with pytest.raises(card.CardError, match="middle of an install"):
        card.read_card(models)  # ...which no reader uses
    gate.finish_install(models)
    assert _contents(models) == {
        "model.onnx": "new model.onnx",
        "reference_profile.json": "new reference_profile.json",
        "model_card.json": '{\n  "model_sha256": "new"\n}\n',
    }
    assert card.read_card(models) == {"model_sha256": "new"}


# The holdout comparison (split.holdout newest_snapshot): both models on the same rows.
HOLDOUT_CFG = {**CFG, "max_regression": {"roc_auc": 0.01, "equal_opportunity_difference": 0.02}}


def _holdout(rows: int, noise: float) -> dict:
    """The comparison the gate makes: a champion, and a challenger that is `noise` worse."""
    rng = np.random.default_rng(7)
    score, extra = rng.normal(size=4000), rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(1 - 2 * score))).astype(int)[:rows]
    champion = 1 / (1 + np.exp(1 - 2 * score))[:rows]
    challenger = 1 / (1 + np.exp(1 - 2 * (score + noise * extra)))[:rows]
    groups = {"female": rng.integers(0, 2, 4000)[:rows]}
    metrics = comparison.paired_bootstrap(
        y, groups, (champion, 0.5), (challenger, 0.5), 300, 0.95, 42
    )
    return {"rows": rows, "confidence": 0.95, "metrics": metrics}


def _on_holdout(compared: dict) -> dict[str, dict]:
    baseline = {"model_sha256": "c" * 64, "comparison": compared}
    rules = gate.judge(CARD, baseline, HOLDOUT_CFG, 1e-4)
    return {r["rule"].split()[0]: r for r in rules if "minus champion" in r["rule"]}


def test_a_challenger_equal_to_the_champion_passes_on_the_holdout() -> None:
    rules = _on_holdout(_holdout(500, noise=0.0))
    assert [r["passed"] for r in rules.values()] == [True, True]
    assert rules["roc_auc"]["rule"] == "roc_auc minus champion, 95% interval upper end >= -0.01"
    assert rules["roc_auc"]["reason"].startswith(
        "ok: roc_auc minus champion is +0.0000 on the same 500 holdout rows"
    )


def test_a_clearly_worse_challenger_fails_on_the_holdout() -> None:
    compared = _holdout(4000, noise=0.5)
    rules = _on_holdout(compared)
    assert rules["roc_auc"]["passed"] is False
    assert rules["roc_auc"]["value"] == compared["metrics"]["roc_auc"]["interval"][1] < -0.01
    assert rules["roc_auc"]["reason"].startswith("FAILED: roc_auc minus champion is -0.04")


def test_a_tiny_holdout_widens_the_interval_so_a_small_dip_is_no_regression() -> None:
    """The same two models: on 60 rows the dip is beyond the tolerance but within the noise."""
    tiny = _holdout(60, noise=0.5)
    dip = tiny["metrics"]["roc_auc"]
    assert dip["difference"] < -0.01 < dip["interval"][1]
    assert _on_holdout(tiny)["roc_auc"]["passed"] is True
    assert _on_holdout(_holdout(4000, noise=0.5))["roc_auc"]["passed"] is False


def _gap_widened_within(interval: list[float]) -> dict:
    """A holdout comparison where the equal opportunity gap grew by 0.1, `interval` around it."""
    same = {"champion": 0.8, "challenger": 0.8, "difference": 0.0, "interval": [0.0, 0.0]}
    wider = {"champion": 0.1, "challenger": 0.2, "difference": 0.1, "interval": interval}
    metrics = {"roc_auc": same, "equal_opportunity_difference": wider}
    return {"rows": 800, "confidence": 0.95, "metrics": metrics}


def test_a_wider_fairness_gap_fails_only_when_its_whole_interval_is_beyond_the_tolerance() -> None:
    name = "equal_opportunity_difference"
    failed = _on_holdout(_gap_widened_within([0.05, 0.15]))[name]
    assert failed["passed"] is False and failed["rule"].endswith("lower end <= +0.02")
    assert _on_holdout(_gap_widened_within([0.01, 0.19]))[name]["passed"] is True


def test_the_report_shows_the_random_split_s_numbers_side_by_side() -> None:
    champion = _with(roc_auc=0.86, demographic_parity_difference=0.15)
    candidate = CARD | {"parity": CARD["parity"] | {"rows": 1409}}
    shown = gate.shown_comparison(candidate, champion, ["roc_auc"])
    assert shown == {
        "on": "random",
        "rows": 1409,
        "metrics": {"roc_auc": {"champion": 0.86, "challenger": 0.85, "difference": -0.01}},
    }
    held_out = {"model_sha256": "c" * 64, "comparison": {"on": "newest_snapshot"}}
    assert gate.shown_comparison(candidate, held_out, ["roc_auc"]) == {"on": "newest_snapshot"}
    assert gate.shown_comparison(candidate, None, ["roc_auc"]) is None
