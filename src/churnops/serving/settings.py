"""Where the served model and its settings come from.

The model: CHURNOPS_MODEL_DIR if set; else, inside a Bento, the model the Bento carries
(under BENTO_MODEL in BentoML's model store); else models/ of the working tree. The
`serve` params: the Bento's arguments (baked in at build time), else params.yaml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from churnops import lineage
from churnops.config import MODELS_DIR, load_params

# The served model's name in BentoML's model store (the registry's model is another thing:
# release.registry.REGISTERED_MODEL).
BENTO_MODEL = "churnops-model"
SERVE_KEYS = (
    "max_batch",
    "drift_window",
    "drift_request_share",
    "drift_min_samples",
    "psi_threshold",
)


def serve_params(arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `serve` params: from Bento arguments when given (baked at build), else params.yaml."""
    if arguments and all(key in arguments for key in SERVE_KEYS):
        values = arguments
    else:
        values = load_params()["serve"]
    return {key: values[key] for key in SERVE_KEYS}


def model_dir() -> Path:
    """CHURNOPS_MODEL_DIR, else models/."""
    return Path(os.environ.get("CHURNOPS_MODEL_DIR") or MODELS_DIR)


def serving_commit(labels: Mapping[str, str] | None = None) -> str:
    """The commit being served: CHURNOPS_GIT_COMMIT, else the Bento's label, else Git's HEAD."""
    return (
        os.environ.get("CHURNOPS_GIT_COMMIT")
        or (labels or {}).get("git_commit")
        or lineage.git_commit()
    )
