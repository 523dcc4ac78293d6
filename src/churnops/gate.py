"""Stage `gate`: release the candidate to models/ only if it passes every rule.

Rules: absolute floors and ceilings from params.yaml, ONNX parity, and no regression
beyond a tolerance against the champion (the model card committed in models/).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from churnops.config import (
    CANDIDATE_DIR,
    CARD_FILE,
    GATE_REPORT,
    MODEL_FILE,
    MODELS_DIR,
    PROFILE_FILE,
    RUN_INFO,
    load_params,
    read_json,
    write_json,
)

LOWER_IS_BETTER = frozenset(
    {
        "log_loss",
        "brier",
        "overfit_gap",
        "demographic_parity_difference",
        "equal_opportunity_difference",
    }
)


def _rule(name: str, value: float, bound: float, passed: bool, relation: str) -> dict[str, Any]:
    verdict = "ok" if passed else "FAILED"
    return {
        "rule": f"{name} {relation} {bound:g}",
        "value": value,
        "passed": passed,
        "reason": f"{verdict}: {name} is {value:.4f}, must be {relation} {bound:.4f}",
    }


def judge(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    cfg: dict[str, Any],
    parity_limit: float,
) -> list[dict[str, Any]]:
    """Every rule's verdict for a candidate model card against the champion's card."""
    metrics = candidate["metrics"]
    rules = [_rule(n, metrics[n], b, metrics[n] >= b, ">=") for n, b in cfg["floors"].items()]
    rules += [_rule(n, metrics[n], b, metrics[n] <= b, "<=") for n, b in cfg["ceilings"].items()]
    parity = candidate["parity"]
    rules.append(
        _rule(
            "parity.max_abs_diff",
            parity["max_abs_diff"],
            parity_limit,
            parity["max_abs_diff"] <= parity_limit,
            "<=",
        )
    )
    rules.append(
        _rule(
            "parity.label_agreement",
            parity["label_agreement"],
            1.0,
            parity["label_agreement"] >= 1.0,
            ">=",
        )
    )
    for name, tolerance in cfg["max_regression"].items():
        if champion is None:
            rules.append(
                {
                    "rule": f"{name} vs champion",
                    "value": metrics[name],
                    "passed": True,
                    "reason": "ok: no champion yet, nothing to regress against",
                }
            )
            continue
        best = champion["metrics"][name]
        if name in LOWER_IS_BETTER:
            rule = _rule(
                name, metrics[name], best + tolerance, metrics[name] <= best + tolerance, "<="
            )
            rule["rule"] = f"{name} <= champion {best:.4f} + {tolerance:g}"
        else:
            rule = _rule(
                name, metrics[name], best - tolerance, metrics[name] >= best - tolerance, ">="
            )
            rule["rule"] = f"{name} >= champion {best:.4f} - {tolerance:g}"
        rules.append(rule)
    return rules


def release(candidate_dir: Path, models_dir: Path, card: dict[str, Any] | None) -> None:
    """Copy the candidate's model and profile into models/, then its card if given.

    Each file is replaced atomically; the card goes last, so it never describes a model
    that is not there yet.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, PROFILE_FILE):
        staged = models_dir / f".{name}.incoming"
        shutil.copyfile(candidate_dir / name, staged)
        os.replace(staged, models_dir / name)
    if card is not None:
        staged = models_dir / f".{CARD_FILE}.incoming"
        write_json(staged, card)
        os.replace(staged, models_dir / CARD_FILE)


def main() -> None:
    params = load_params()
    candidate = read_json(CANDIDATE_DIR / CARD_FILE)
    champion_card = MODELS_DIR / CARD_FILE
    champion = read_json(champion_card) if champion_card.exists() else None
    rules = judge(candidate, champion, params["gate"], params["export"]["parity_max_abs_diff"])
    passed = all(r["passed"] for r in rules)
    write_json(
        GATE_REPORT,
        {
            "passed": passed,
            "candidate": candidate["model_sha256"],
            "champion": champion["model_sha256"] if champion else None,
            "rules": rules,
        },
    )
    for rule in rules:
        print(f"gate: {rule['reason']}")
    if not passed:
        failed = sum(not r["passed"] for r in rules)
        sys.exit(f"gate: the candidate fails {failed} rule(s); models/ keeps the champion")
    # A byte-identical model keeps the card of the run that first produced it; a new one
    # gets the candidate's card plus the identity of the run that trained it.
    same_model = champion is not None and champion["model_sha256"] == candidate["model_sha256"]
    release(CANDIDATE_DIR, MODELS_DIR, None if same_model else candidate | read_json(RUN_INFO))
    print(f"gate: passed; models/ holds {candidate['model_sha256'][:12]}")


if __name__ == "__main__":
    main()
