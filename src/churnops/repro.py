"""`churnops pipeline` (`make pipeline`): `dvc repro` as one transaction.

DVC records each stage in dvc.lock as it finishes, so a failure late in the graph
would leave a lock describing a half-new pipeline. This wrapper puts dvc.lock back as
it was when any stage fails; models/ is untouched anyway, because only a passed gate
writes it. The failed stage's reports stay in reports/ to show what went wrong.
"""

from __future__ import annotations

import subprocess
import sys

from churnops.config import DVC_LOCK


def repro(args: list[str]) -> int:
    before = DVC_LOCK.read_bytes() if DVC_LOCK.exists() else None
    code = subprocess.run([sys.executable, "-m", "dvc", "repro", *args], check=False).returncode
    if code != 0:
        if before is None:
            DVC_LOCK.unlink(missing_ok=True)
        else:
            DVC_LOCK.write_bytes(before)
        print(
            "pipeline: failed; dvc.lock and models/ are as they were before this run "
            "(see the error above and reports/)",
            file=sys.stderr,
        )
    return code


def main(argv: list[str] | None = None) -> None:
    sys.exit(repro(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
