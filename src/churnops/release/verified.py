"""`churnops verified --since SHA --overlay NAME`: does main still give what was verified?

Production releases the commit staging verified. By the time a reviewer approves, main
may have moved; the release commit goes on top of it only if nothing that production
deploys changed since SHA: k8s/ apart from the other overlays. A change of the model or
the code is fine (it ships through its own CD run); a change of the base manifests or
this overlay would reach production unverified, so the release refuses.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import PurePosixPath

from churnops.release.set_image import OVERLAYS_DIR

DEPLOYED = PurePosixPath("k8s")


def unverified_changes(since: str, ref: str, overlay: str) -> list[str]:
    """Paths under k8s/ that `ref` changed since `since`, apart from other overlays'."""
    changed = subprocess.run(
        ["git", "diff", "--name-only", since, ref, "--", str(DEPLOYED)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    overlays = PurePosixPath(OVERLAYS_DIR.as_posix())
    return [
        path
        for path in changed
        if not (
            PurePosixPath(path).is_relative_to(overlays)
            and PurePosixPath(path).parts[len(overlays.parts)] != overlay
        )
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops verified", description=__doc__.splitlines()[0])
    parser.add_argument("--since", required=True, help="the commit staging verified")
    parser.add_argument("--ref", default="origin/main", help="where the release goes (origin/main)")
    parser.add_argument("--overlay", required=True, help="the overlay being released")
    args = parser.parse_args(argv)
    try:
        changes = unverified_changes(args.since, args.ref, args.overlay)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"verified: `git diff` failed: {exc.stderr.strip()}")
    if changes:
        sys.exit(
            f"verified: {args.ref} changed what {args.overlay} deploys since {args.since[:12]} "
            f"(verified in staging): {', '.join(changes)}. Not releasing an unverified state: "
            "the newer CD run releases it through staging first."
        )
    print(f"verified: {args.ref} deploys to {args.overlay} what {args.since[:12]} did")


if __name__ == "__main__":
    main()
