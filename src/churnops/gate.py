"""Stage `gate`: install the candidate in models/ only if it passes every rule.

Rules: absolute floors and ceilings from params.yaml, ONNX parity, and no regression
beyond a tolerance against the baseline: the champion (models/) that the candidate would
replace. How the two are compared follows `split.holdout`:
- `random` (a pull request's split of the same data): the candidate's test metrics
  against the champion's, from its model card;
- `newest_snapshot` (continuous training): both models scored here on the same holdout,
  the newest snapshot, which neither trained on; a rule fails only when the paired
  bootstrap interval of challenger minus champion lies wholly beyond the tolerance.
An installed card remembers its baseline and that comparison, so re-gating the champion
itself gives the same verdict and gate.json is a fixed point.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from churnops import comparison, lineage, schema, tracking
from churnops.card import COMMITTED, INCOMING, decision_threshold
from churnops.config import (
    CANDIDATE_DIR,
    CARD_FILE,
    GATE_REPORT,
    MODEL_FILE,
    MODELS_DIR,
    NEWEST_SNAPSHOT,
    PROFILE_FILE,
    RANDOM,
    TEST_SET,
    load_params,
    read_json,
    write_json,
)
from churnops.predictor import Predictor
from churnops.quality import rounded

LOWER_IS_BETTER = frozenset(
    {
        "log_loss",
        "brier",
        "overfit_gap",
        "demographic_parity_difference",
        "equal_opportunity_difference",
    }
)


class GateError(RuntimeError):
    """The gate cannot judge: what it needs is missing; the message says how to get it."""


def _rule(rule: str, value: float, passed: bool, bound: str) -> dict[str, Any]:
    verdict = "ok" if passed else "FAILED"
    name = rule.split()[0]
    return {
        "rule": rule,
        "value": value,
        "passed": passed,
        "reason": f"{verdict}: {name} is {value:.4f}, must be {bound}",
    }


def _bounded(name: str, value: float, bound: float, upper: bool, label: str) -> dict[str, Any]:
    relation = "<=" if upper else ">="
    passed = value <= bound if upper else value >= bound
    return _rule(f"{name} {relation} {label}", value, passed, f"{relation} {bound:.4f}")


def baseline_of(candidate: dict[str, Any], champion: dict[str, Any] | None) -> dict | None:
    """What the candidate must not regress against: the champion, or the champion's own
    baseline when the candidate is the champion."""
    if champion is None:
        return None
    if champion["model_sha256"] == candidate["model_sha256"]:
        return champion.get("gated_against")
    return {"model_sha256": champion["model_sha256"], "metrics": champion["metrics"]}


def _no_worse_on_holdout(name: str, compared: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Fails only when the whole interval of challenger minus champion lies beyond the
    tolerance on the losing side: its upper end below -tolerance (higher is better) or
    its lower end above +tolerance (lower is better)."""
    entry = compared["metrics"][name]
    low, high = entry["interval"]
    if name in LOWER_IS_BETTER:
        end, passed, bound, side = low, low <= tolerance, f"+{tolerance:g}", "lower end <="
    else:
        end, passed, bound, side = high, high >= -tolerance, f"-{tolerance:g}", "upper end >="
    share = f"{compared['confidence']:.0%}"
    return {
        "rule": f"{name} minus champion, {share} interval {side} {bound}",
        "value": end,
        "passed": passed,
        "reason": (
            f"{'ok' if passed else 'FAILED'}: {name} minus champion is "
            f"{entry['difference']:+.4f} on the same {compared['rows']} holdout rows, "
            f"{share} interval [{low:+.4f}, {high:+.4f}]: its {side} {bound}"
        ),
    }


def judge(
    candidate: dict[str, Any], baseline: dict[str, Any] | None, cfg: dict, parity_limit: float
) -> list[dict[str, Any]]:
    """Every rule's verdict for a candidate model card."""
    metrics, parity = candidate["metrics"], candidate["parity"]
    rules = [_bounded(n, metrics[n], b, False, f"{b:g}") for n, b in cfg["floors"].items()]
    rules += [_bounded(n, metrics[n], b, True, f"{b:g}") for n, b in cfg["ceilings"].items()]
    rules.append(
        _bounded(
            "parity.max_abs_diff", parity["max_abs_diff"], parity_limit, True, f"{parity_limit:g}"
        )
    )
    rules.append(_bounded("parity.label_agreement", parity["label_agreement"], 1.0, False, "1"))
    for name, tolerance in cfg["max_regression"].items():
        if baseline is None:
            rules.append(
                _rule(
                    f"{name} vs champion",
                    metrics[name],
                    True,
                    "no worse than a champion (none yet)",
                )
            )
            continue
        if "comparison" in baseline:
            rules.append(_no_worse_on_holdout(name, baseline["comparison"], tolerance))
            continue
        best = baseline["metrics"][name]
        upper = name in LOWER_IS_BETTER
        bound = best + tolerance if upper else best - tolerance
        sign = "+" if upper else "-"
        rules.append(
            _bounded(name, metrics[name], bound, upper, f"champion {best:.4f} {sign} {tolerance:g}")
        )
    return rules


def on_holdout(
    champion: dict[str, Any], candidate: dict[str, Any], holdout: pd.DataFrame, params: dict
) -> dict[str, Any]:
    """The champion in models/ and the candidate scored on the same holdout rows, compared
    metric by metric with a paired bootstrap interval (gate.bootstrap, seeded base.seed)."""
    champion_model = MODELS_DIR / MODEL_FILE
    if (
        not champion_model.exists()
        or lineage.file_sha256(champion_model) != champion["model_sha256"]
    ):
        raise GateError(
            f"{champion_model} is not the model its card describes: `dvc pull gate` gets "
            "the champion to score on the holdout"
        )
    unknown = sorted(set(params["gate"]["max_regression"]) - set(comparison.METRICS))
    if unknown:
        raise GateError(
            f"gate.max_regression names {unknown}, which the holdout comparison does not "
            f"compute (it compares {', '.join(comparison.METRICS)})"
        )
    features = schema.feature_columns(holdout)
    scored = [
        (Predictor(model).churn_probability(features), decision_threshold(card))
        for model, card in ((champion_model, champion), (CANDIDATE_DIR / MODEL_FILE, candidate))
    ]
    bootstrap = params["gate"]["bootstrap"]
    metrics = comparison.paired_bootstrap(
        schema.labels(holdout).to_numpy(),
        {feature: holdout[feature].to_numpy() for feature in schema.SENSITIVE_FEATURES},
        *scored,
        bootstrap["resamples"],
        bootstrap["confidence"],
        params["base"]["seed"],
    )
    return {
        "on": NEWEST_SNAPSHOT,
        "rows": len(holdout),
        "resamples": bootstrap["resamples"],
        "confidence": bootstrap["confidence"],
        "champion_data_hash": champion["data_hash"],
        "metrics": {name: metrics[name] for name in params["gate"]["max_regression"]},
    }


def shown_comparison(
    candidate: dict[str, Any], baseline: dict[str, Any] | None, names: list[str]
) -> dict[str, Any] | None:
    """Both models' numbers side by side for gate.json and the report: the holdout
    comparison, or (random split) the champion's card against the candidate's test split."""
    if baseline is None:
        return None
    if "comparison" in baseline:
        return baseline["comparison"]
    return {
        "on": RANDOM,
        "rows": candidate["parity"]["rows"],
        "metrics": {
            name: {
                "champion": baseline["metrics"][name],
                "challenger": candidate["metrics"][name],
                "difference": rounded(candidate["metrics"][name] - baseline["metrics"][name]),
            }
            for name in names
        },
    }


def install(candidate_dir: Path, models_dir: Path, card: dict[str, Any] | None) -> None:
    """Put the candidate's model and profile (and its card, if given) in models/, as one change.

    The files are staged in models/.incoming/, then a COMMITTED marker is renamed into
    place: the commit point. Only then are the files moved into models/. A crash before the
    marker leaves models/ as it was (the stage is discarded); after it, `finish_install`
    completes the moves, which every reader of models/ requires (card.read_card).
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    finish_install(models_dir)
    incoming = models_dir / INCOMING
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir()
    for name in (MODEL_FILE, PROFILE_FILE):
        shutil.copyfile(candidate_dir / name, incoming / name)
    if card is not None:
        write_json(incoming / CARD_FILE, card)
    for staged in incoming.iterdir():
        with staged.open("rb") as f:
            os.fsync(f.fileno())
    marker = incoming / f".{COMMITTED}"
    marker.write_text("\n".join(sorted(p.name for p in incoming.iterdir())) + "\n")
    os.replace(marker, incoming / COMMITTED)
    finish_install(models_dir)


def finish_install(models_dir: Path) -> None:
    """Complete an install that reached its commit point; discard one that did not."""
    incoming = models_dir / INCOMING
    if not incoming.exists():
        return
    committed = incoming / COMMITTED
    if committed.exists():
        for name in committed.read_text().split():
            if (incoming / name).exists():
                os.replace(incoming / name, models_dir / name)
    shutil.rmtree(incoming)


def main() -> None:
    params = load_params()
    finish_install(MODELS_DIR)  # an install a crash interrupted after its commit point
    candidate = read_json(CANDIDATE_DIR / CARD_FILE)
    champion_card = MODELS_DIR / CARD_FILE
    champion = read_json(champion_card) if champion_card.exists() else None
    same_model = champion is not None and champion["model_sha256"] == candidate["model_sha256"]
    baseline = baseline_of(candidate, champion)
    if champion is not None and not same_model and params["split"]["holdout"] == NEWEST_SNAPSHOT:
        try:
            compared = on_holdout(champion, candidate, pd.read_parquet(TEST_SET), params)
        except GateError as exc:
            sys.exit(f"gate: {exc}")
        baseline = {"model_sha256": champion["model_sha256"], "comparison": compared}
    rules = judge(candidate, baseline, params["gate"], params["export"]["parity_max_abs_diff"])
    passed = all(r["passed"] for r in rules)
    write_json(
        GATE_REPORT,
        {
            "passed": passed,
            "candidate": candidate["model_sha256"],
            "baseline": baseline["model_sha256"] if baseline else None,
            "comparison": shown_comparison(
                candidate, baseline, list(params["gate"]["max_regression"])
            ),
            "rules": rules,
        },
    )
    for rule in rules:
        print(f"gate: {rule['reason']}")
    if not passed:
        failed = sum(not r["passed"] for r in rules)
        sys.exit(f"gate: the candidate fails {failed} rule(s); models/ keeps the champion")
    # A byte-identical model keeps the card of the run that first produced it; a new one
    # gets the candidate's card plus the run that trained it and the baseline it beat.
    if same_model:
        card = None
    else:
        try:
            run = tracking.run_identity(tracking.training_run())
        except tracking.TrackingError as exc:
            sys.exit(f"gate: {exc}")
        card = candidate | run | {"gated_against": baseline}
    install(CANDIDATE_DIR, MODELS_DIR, card)
    print(f"gate: passed; models/ holds {candidate['model_sha256'][:12]}")


if __name__ == "__main__":
    main()
