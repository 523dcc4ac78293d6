"""The gate's rules: floors, ceilings, parity and no regression against the champion."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from churnops import card, gate

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
