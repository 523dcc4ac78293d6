"""`churnops bento` imports the gated model so that the Bento takes exactly that model,
also after a rollback to a model the store already holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from pathlib import Path
import bentoml
from churnops.serving.bento import import_model
for directory in sys.argv[1:]:
    import_model(Path(directory))
latest = bentoml.models.get("churnops-model:latest")
print(latest.tag.version, latest.info.labels["data_hash"], latest.info.labels["metric_roc_auc"])
"""


def _model_dir(root: Path, sha: str, data_hash: str) -> Path:
    directory = root / sha
    directory.mkdir()
    (directory / "model.onnx").write_bytes(sha.encode())
    (directory / "reference_profile.json").write_text("{}")
    card = {"model_sha256": sha * 8, "data_hash": data_hash, "metrics": {"roc_auc": 0.84}}
    (directory / "model_card.json").write_text(json.dumps(card))
    return directory


def test_the_last_imported_model_is_latest_even_when_already_stored(tmp_path: Path) -> None:
    first = _model_dir(tmp_path, "aaaaaaaa", "data-1")
    second = _model_dir(tmp_path, "bbbbbbbb", "data-2")
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(first), str(second), str(first)],
        env={"BENTOML_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    version, data_hash, roc_auc = run.stdout.split()
    assert version == ("aaaaaaaa" * 8)[:20]
    assert data_hash == "data-1" and roc_auc == "0.84"
