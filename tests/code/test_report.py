"""The report's side-by-side table of champion and candidate."""

from __future__ import annotations

from churnops.release.report import comparison_section

HOLDOUT = {
    "on": "newest_snapshot",
    "rows": 500,
    "resamples": 1000,
    "confidence": 0.95,
    "metrics": {
        "roc_auc": {
            "champion": 0.851112,
            "challenger": 0.847349,
            "difference": -0.003763,
            "interval": [-0.008476, 0.000739],
        }
    },
}


def test_the_holdout_table_shows_both_models_the_difference_and_its_interval() -> None:
    table = comparison_section(HOLDOUT)
    assert "the same 500 customers of the newest snapshot" in table
    assert "| Metric | Champion | Candidate | Difference | 95% interval |" in table
    assert "| `roc_auc` | 0.8511 | 0.8473 | -0.0038 | [-0.0085, +0.0007] |" in table


def test_a_random_split_compares_with_the_champion_s_card_and_no_champion_says_so() -> None:
    entry = {k: v for k, v in HOLDOUT["metrics"]["roc_auc"].items() if k != "interval"}
    card = {"on": "random", "rows": 1409, "metrics": {"f1": entry}}
    table = comparison_section(card)
    assert "champion's numbers from its model card" in table
    assert "| `f1` | 0.8511 | 0.8473 | -0.0038 |" in table
    assert comparison_section(None) == "No champion yet: nothing to compare against."
