"""`churnops bento`: put the gated model in the BentoML model store and build the Bento.

The model (models/: ONNX model, reference profile, model card) is imported under the
name the service loads, versioned by its sha256 and labelled with its lineage (data
hash, training commit, metrics). The Bento is labelled with the commit being built and
carries the `serve` params as Bento arguments, so the image needs no repository.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from churnops import lineage
from churnops.config import CARD_FILE, MODEL_FILE, MODELS_DIR, PROFILE_FILE, load_params, read_json
from churnops.serving.settings import BENTO_MODEL

BENTOFILE = Path("bentofile.yaml")
BUILD_CONTEXT = Path("src")
TEMPLATES = Path("bento")  # bentofile.yaml's dockerfile_template is ../bento/ from src/


class BentoError(RuntimeError):
    """The Bento cannot be built here; the message says why."""


def staged_context(into: Path) -> Path:
    """The build context (src/, bento/, bentofile.yaml) copied under `into`; its src/.

    BentoML refuses a build context with a hidden folder in its path ("Accessing hidden
    files is not allowed"), as a checkout under ~/.cache has: the copy has none.
    """
    hidden = [part for part in into.resolve().parts if part.startswith(".")]
    if hidden:
        raise BentoError(
            f"the temporary folder {into} is under a hidden folder ({hidden[0]}), which "
            "BentoML refuses: set TMPDIR to a folder without one"
        )
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(BUILD_CONTEXT, into / BUILD_CONTEXT, ignore=ignore)
    shutil.copytree(TEMPLATES, into / TEMPLATES)
    shutil.copyfile(BENTOFILE, into / BENTOFILE)
    return into / BUILD_CONTEXT


def model_labels(card: dict[str, Any]) -> dict[str, str]:
    """Lineage and quality of a model card as BentoML labels (strings only)."""
    labels = {
        key: str(card.get(key, "unknown"))
        for key in (
            "model_sha256",
            "estimator",
            "data_hash",
            "mlflow_run_id",
            "trained_from_commit",
        )
    }
    for name, value in card.get("metrics", {}).items():
        if isinstance(value, int | float):
            labels[f"metric_{name}"] = f"{value:.6g}"
    return labels


def import_model(model_dir: Path) -> str:
    """Import model_dir into the model store as its newest model; the model's tag.

    bentofile.yaml takes `churnops-model:latest`, so a model already in the store (a
    rollback to an earlier model) is imported again to become the latest.
    """
    import bentoml

    card = read_json(model_dir / CARD_FILE)
    tag = f"{BENTO_MODEL}:{card['model_sha256'][:20]}"
    with contextlib.suppress(bentoml.exceptions.NotFound):
        bentoml.models.delete(tag)
    with bentoml.models.create(tag, labels=model_labels(card), metadata=card) as model:
        for name in (MODEL_FILE, PROFILE_FILE, CARD_FILE):
            shutil.copyfile(model_dir / name, Path(model.path) / name)
    return tag


def build(model_dir: Path, git_commit: str) -> str:
    """Import the model and build the Bento; the Bento's tag."""
    model_tag = import_model(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        context = staged_context(Path(tmp) / "context")
        arguments = Path(tmp) / "serve.yaml"
        arguments.write_text(yaml.safe_dump(load_params()["serve"]))
        # From the copy's root: BentoML also refuses a template outside the working folder.
        command = [
            *(sys.executable, "-m", "bentoml", "build", str(BUILD_CONTEXT)),
            *("--bentofile", str(BENTOFILE)),
            *("--arg-file", str(arguments), "--label", f"git_commit={git_commit}"),
            *("--label", f"model={model_tag}", "--output", "tag"),
        ]
        out = subprocess.run(
            command, cwd=context.parent, check=True, capture_output=True, text=True
        ).stdout
    return out.strip().splitlines()[-1].removeprefix("__tag__:")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops bento", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args(argv)
    try:
        tag = build(args.model_dir, lineage.git_commit())
    except BentoError as error:
        sys.exit(f"bento: {error}")
    except subprocess.CalledProcessError as error:
        sys.exit(f"bento: `bentoml build` failed:\n{error.stderr}")
    print(tag)


if __name__ == "__main__":
    main()
