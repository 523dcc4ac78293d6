"""`churnops COMMAND ...`: one entry point; each command lives in its own module.

A command's module defines `main(argv: list[str] | None = None)` and parses its own
arguments, so adding a command is one line here.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("churnops.intake.fetch", "get data/ as data.dvc records it"),
    "pipeline": ("churnops.repro", "run `dvc repro` as one transaction"),
    "ingest": (
        "churnops.intake.ingest",
        "append newly labeled customers (sql, file; synthetic: drills) as a dated snapshot",
    ),
    "register": ("churnops.release.registry", "register models/ in MLflow as the challenger"),
    "promote": ("churnops.release.promote", "release a gated candidate as the MLflow champion"),
    "mlflow-access": (
        "churnops.release.access",
        "the tracking server's CI and CD identities, least privilege (run as its admin)",
    ),
    "rollback": (
        "churnops.release.rollback",
        "restore a version's model, image and data in one commit",
    ),
    "set-image": ("churnops.release.set_image", "write an image digest into a k8s overlay"),
    "verified": (
        "churnops.release.verified",
        "refuse a release if main changed what the overlay deploys since staging verified it",
    ),
    "fork-pr": (
        "churnops.release.fork_pr",
        "a fork's reviewed pull request, pushed to a branch here to be trained",
    ),
    "report": ("churnops.release.report", "the pull-request report (params, metrics, gate, plots)"),
    "retrain-trigger": ("churnops.retraining.trigger", "Alertmanager webhook: drift -> retrain"),
    "evaluate-champion": (
        "churnops.retraining.champion",
        "score the champion on the newest labels",
    ),
    "score": (
        "churnops.serving.score",
        "batch scoring: INPUT OUTPUT (CSV or Parquet), rejects aside",
    ),
    "bento": (
        "churnops.serving.bento",
        "import models/ into the BentoML store and build the Bento",
    ),
    "init": ("churnops.init", "write churnops.yaml and render it (--check: what is out of date)"),
    "doctor": ("churnops.doctor", "what a workflow job's setup is missing (--job JOB)"),
    "identity": ("churnops.identity", "print a value of churnops.yaml (--github-env: all of them)"),
}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        lines = "\n".join(f"  {name:<12} {text}" for name, (_, text) in COMMANDS.items())
        print(f"usage: churnops COMMAND [ARGS...]\n\ncommands:\n{lines}")
        sys.exit(0 if args and args[0] in ("-h", "--help") else 2)
    module, _ = COMMANDS[args[0]]
    importlib.import_module(module).main(args[1:])
