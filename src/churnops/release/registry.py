"""The MLflow model registry as the record of model versions (`churnops register`).

Two registered models, one per kind of access (MLflow's model-per-environment pattern):
every candidate CI or CT registers is a version of "churnops-candidates" (the newest is
the `challenger`); promotion copies a gated candidate, with its tags, into "churnops",
whose `champion` alias is what production serves. The identity CI and CT use may only
read "churnops", so it cannot move `champion` (docs/setup.md, `churnops mlflow-access`).
Each version is the ONNX model in models/, tagged with its lineage (commit, data hash,
params hash, model sha256, metrics, gate verdict and, once built, the image digest).
`card_commit` names a commit whose models/model_card.json describes the version: the
commit a rollback restores the data and model pointers from.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnops import lineage, tracking
from churnops.config import CARD_FILE, GATE_REPORT, MODEL_FILE, MODELS_DIR, read_json

REGISTERED_MODEL = "churnops"
CANDIDATES = "churnops-candidates"
CHAMPION = "champion"
CHALLENGER = "challenger"
CARD = MODELS_DIR / CARD_FILE
# What serving the ONNX model through MLflow needs, pinned as installed (requirements.lock),
# so MLflow infers nothing.
ONNX_PACKAGES = ("onnx", "onnxruntime", "numpy")


class RegistryError(RuntimeError):
    """The registry cannot do what was asked; the message says why and what to do."""


def connect() -> Any:
    """An MLflow client for the configured store (MLFLOW_TRACKING_URI, else local SQLite)."""
    from mlflow import MlflowClient

    with permitted("read the registry", REGISTERED_MODEL, need="READ"):
        tracking.configure()  # the credentials' first use
        client = MlflowClient()
        client.search_registered_models(max_results=1)
    return client


def _identity() -> str:
    return os.environ.get("MLFLOW_TRACKING_USERNAME", "(no MLFLOW_TRACKING_USERNAME)")


@contextmanager
def permitted(what: str, model: str, need: str = "EDIT") -> Iterator[None]:
    """Turn the server's 401 and 403 into a RegistryError naming the identity and its lack."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as raised:
        # copy_model_version wraps the server's answer in an exception of its own.
        cause = raised.__cause__
        exc = cause if isinstance(cause, MlflowException) else raised
        if exc.error_code == "UNAUTHENTICATED":
            raise RegistryError(
                f"the tracking server did not accept {_identity()}'s credentials: check "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (docs/setup.md)"
            ) from None
        if exc.error_code != "PERMISSION_DENIED":
            raise
        raise RegistryError(
            f"the MLflow identity {_identity()} may not {what}: it needs {need} on the "
            f"registered model {model!r} (CD's identity has it, CI's does not; docs/setup.md)"
        ) from None


def card_at(commit: str, card: Path = CARD) -> dict[str, Any] | None:
    """The model card recorded at a commit, or None if the commit or the file is not there."""
    shown = subprocess.run(
        ["git", "show", f"{commit}:{card.as_posix()}"], capture_output=True, text=True
    )
    if shown.returncode != 0:
        return None
    return json.loads(shown.stdout)


def head_records(model_sha256: str) -> str | None:
    """HEAD, if its committed model card describes this model (it can be rolled back to)."""
    commit = lineage.git_commit()
    card = card_at(commit) if commit != "unknown" else None
    return commit if card and card.get("model_sha256") == model_sha256 else None


def gate_report_for(model_sha256: str, gate_report: Path = GATE_REPORT) -> dict | None:
    """reports/gate.json if it judged this very model, else None."""
    if not gate_report.exists():
        return None
    report = read_json(gate_report)
    return report if report.get("candidate") == model_sha256 else None


def gate_verdict(report: dict[str, Any] | None, recorded: str = "unknown") -> str:
    """`true` or `false` from a gate report, else the verdict recorded before (a tag)."""
    if report is None:
        return recorded
    return "true" if report["passed"] else "false"


def lineage_tags(card: dict[str, Any], gate_report: Path = GATE_REPORT) -> dict[str, str]:
    """The tags a model version carries, from its model card and the gate's verdict."""
    tags = {
        "git_commit": lineage.git_commit(),
        "trained_from_commit": str(card.get("trained_from_commit", "unknown")),
        "data_hash": card["data_hash"],
        "params_hash": card["params_hash"],
        "model_sha256": card["model_sha256"],
        "estimator": card["estimator"],
        "mlflow_run_id": str(card.get("mlflow_run_id", "unknown")),
        "gate_passed": gate_verdict(gate_report_for(card["model_sha256"], gate_report)),
    }
    tags |= {f"metric.{k}": f"{v:g}" for k, v in tracking.flat_metrics(card["metrics"]).items()}
    commit = head_records(card["model_sha256"])
    if commit:
        tags["card_commit"] = commit
    return tags


def find_version(client: Any, model_sha256: str, model: str = CANDIDATES) -> Any | None:
    """The version of a registered model holding a model, found by its sha256 tag."""
    found = client.search_model_versions(
        f"name = '{model}' and tags.model_sha256 = '{model_sha256}'"
    )
    return min(found, key=lambda v: int(v.version)) if found else None


def get_version(client: Any, version: str | None, model: str = CANDIDATES) -> Any:
    """A version by number; None means the one holding the model the local card describes."""
    from mlflow.exceptions import MlflowException

    if version is None:
        return version_of_card(client, model)
    try:
        return client.get_model_version(model, version)
    except MlflowException:
        raise RegistryError(f"{model} has no version {version!r}") from None


def version_of_card(client: Any, model: str = CANDIDATES, card_path: Path = CARD) -> Any:
    """The version of a registered model holding the model the local model card describes."""
    sha = read_json(card_path)["model_sha256"]
    version = find_version(client, sha, model)
    if version is None:
        raise RegistryError(
            f"the model in {card_path} ({sha[:12]}) is not in {model}: "
            + ("run `churnops register`" if model == CANDIDATES else "run `churnops promote`")
        )
    return version


def _run_for(client: Any, card: dict[str, Any]) -> str | None:
    """The card's MLflow run if this store has it; None means a new run must be started."""
    from mlflow.exceptions import MlflowException

    run_id = card.get("mlflow_run_id")
    if not run_id:
        return None
    try:
        return client.get_run(run_id).info.run_id
    except MlflowException:
        return None


def register(
    card_path: Path = CARD,
    model_path: Path = MODELS_DIR / MODEL_FILE,
    gate_report: Path = GATE_REPORT,
    image_digest: str | None = None,
) -> tuple[str, bool]:
    """Register models/model.onnx as a version tagged with its lineage; (version, created).

    A model already registered keeps its version and aliases, and gains the tags that
    have become known (release commit, image digest, gate verdict), so CD on main can
    call this for a model the nightly run registered.
    A new version of the candidates becomes the `challenger`.
    """
    import mlflow
    import onnx

    card = read_json(card_path)
    actual = lineage.file_sha256(model_path)
    if actual != card["model_sha256"]:
        raise RegistryError(
            f"{model_path} ({actual[:12]}) is not the model {card_path} describes "
            f"({card['model_sha256'][:12]}): run `dvc pull` or `make pipeline` first"
        )
    client = connect()
    tags = lineage_tags(card, gate_report)
    if image_digest:
        tags["image_digest"] = image_digest
    existing = find_version(client, actual)
    if existing is not None:
        # Add what has become known since; what was recorded at registration stays.
        news = {k: tags[k] for k in ("card_commit", "image_digest") if k in tags}
        if tags["gate_passed"] != "unknown":
            news["gate_passed"] = tags["gate_passed"]
        with permitted("tag candidates", CANDIDATES):
            for key, value in news.items():
                client.set_model_version_tag(CANDIDATES, existing.version, key, value)
        return existing.version, False
    run_id = _run_for(client, card)
    with permitted("register candidates", CANDIDATES), mlflow.start_run(run_id=run_id) as run:
        if run_id is None:
            # The training run lives in another store (a CI runner's SQLite file): this
            # run carries its lineage instead.
            mlflow.set_tags({k: v for k, v in tags.items() if not k.startswith("metric.")})
            mlflow.log_metrics(tracking.flat_metrics(card["metrics"]))
        info = mlflow.onnx.log_model(
            onnx.load(str(model_path)),
            name="onnx-model",
            pip_requirements=lineage.pinned(*ONNX_PACKAGES),
        )
        tags["registered_from_run"] = run.info.run_id
        version = mlflow.register_model(info.model_uri, CANDIDATES, tags=tags).version
        client.set_registered_model_alias(CANDIDATES, CHALLENGER, version)
    return version, True


def _note_card_commit(client: Any, model: Any) -> None:
    """Tag `card_commit` when HEAD's committed model card describes this version."""
    commit = head_records(model.tags.get("model_sha256", ""))
    if commit:
        client.set_model_version_tag(model.name, model.version, "card_commit", commit)


def promote(version: str | None = None, gate_report: Path = GATE_REPORT) -> str:
    """Copy a candidate whose gate passed (default: the one in models/) into the released
    model, if it is not there yet, and move `champion` to it; returns the released version.

    The verdict is reports/gate.json's if it judged this model, else the version's tag.
    """
    client = connect()
    model = get_version(client, version)
    report = gate_report_for(model.tags.get("model_sha256", ""), gate_report)
    verdict = gate_verdict(report, model.tags.get("gate_passed", "unknown"))
    if verdict != "true":
        failed = [r["reason"] for r in report["rules"] if not r["passed"]] if report else []
        why = "failed the gate" if verdict == "false" else "has no recorded gate verdict"
        raise RegistryError(
            f"refusing to promote version {model.version}: it {why}"
            f"{': ' + '; '.join(failed) if failed else ''}. `champion` stays where it is."
        )
    with permitted("move champion", REGISTERED_MODEL):
        released = find_version(client, model.tags["model_sha256"], REGISTERED_MODEL)
        if released is None:
            released = client.copy_model_version(
                f"models:/{CANDIDATES}/{model.version}", REGISTERED_MODEL
            )
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, released.version)
        client.set_model_version_tag(
            REGISTERED_MODEL,
            released.version,
            "promoted_at",
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        _note_card_commit(client, released)
    return released.version


def tag_image(digest: str, version: str | None = None) -> str:
    """Record on a candidate (default: the one in models/), and on its released copy if
    there is one, the image digest that serves it; returns the candidate's version."""
    client = connect()
    model = get_version(client, version)
    released = find_version(client, model.tags.get("model_sha256", ""), REGISTERED_MODEL)
    for each in filter(None, (model, released)):
        with permitted("tag versions", each.name):
            client.set_model_version_tag(each.name, each.version, "image_digest", digest)
            _note_card_commit(client, each)
    return model.version


def main(argv: list[str] | None = None) -> None:
    """`churnops register [--image-digest sha256:...]`."""
    parser = argparse.ArgumentParser(prog="churnops register", description=__doc__.splitlines()[0])
    parser.add_argument("--image-digest", help="digest of the image that serves this model")
    args = parser.parse_args(argv)
    try:
        version, created = register(image_digest=args.image_digest)
    except RegistryError as exc:
        sys.exit(f"register: {exc}")
    if created:
        print(f"register: {CANDIDATES} version {version} registered, alias {CHALLENGER}")
    else:
        print(f"register: the model is already {CANDIDATES} version {version}; tags updated")


if __name__ == "__main__":
    main()
