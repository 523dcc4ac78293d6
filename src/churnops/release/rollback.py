"""`churnops rollback --to VERSION`: put model, image and data back together, in one commit.

From the registry's record of VERSION: its image digest goes into the production and
staging overlays, and its data pointer (data.dvc), pipeline record (dvc.lock), model card
and reports come back from its `card_commit`. That is one Git commit; Argo CD then
deploys the old image, and `dvc pull` gets the old data and model files. The `champion`
alias moves back to VERSION only once that commit is on main (`--move-champion`, which
`make rollback` runs after the push): a refused push leaves the registry as it was. Code
and params.yaml stay as they are: revert the change that caused the rollback in a pull
request, or the next retrain repeats it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from churnops.config import DATA_POINTER, DVC_LOCK, REPORTS_DIR
from churnops.release import registry, set_image

RESTORED_PATHS = (DATA_POINTER, DVC_LOCK, registry.CARD, REPORTS_DIR)
ROLLBACK_OVERLAYS = ("production", "staging")


class RollbackError(RuntimeError):
    """The rollback cannot be done as one consistent change; nothing was changed."""


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RollbackError(f"`git {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _staged_anything() -> bool:
    return subprocess.run(["git", "diff", "--cached", "--quiet"]).returncode != 0


def _uncommitted(paths: list[str]) -> list[str]:
    """Paths among these with changes Git has not committed (they would be overwritten)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "-z", "--", *paths], capture_output=True, text=True
    ).stdout
    return [entry[3:] for entry in status.split("\0") if entry]


def plan(version: str) -> dict[str, str]:
    """What VERSION's record says to restore; refuses before anything changes."""
    client = registry.connect()
    try:
        model = registry.get_version(client, version, registry.REGISTERED_MODEL)
    except registry.RegistryError as exc:
        raise RollbackError(str(exc)) from None
    sha = model.tags.get("model_sha256", "")
    commit = model.tags.get("card_commit")
    card = registry.card_at(commit) if commit else None
    if not card or card.get("model_sha256") != sha:
        raise RollbackError(
            f"version {version} has no card_commit whose {registry.CARD} holds its model "
            f"({sha[:12] or 'no model_sha256 tag'}): it was never released from main, so "
            "there are no pointers to restore"
        )
    digest = model.tags.get("image_digest")
    if not digest:
        raise RollbackError(
            f"version {version} has no image_digest tag: no image was ever built for it"
        )
    return {"version": model.version, "commit": commit, "digest": digest, "sha": sha}


def commit_message(target: dict[str, str], overlays: list[str]) -> str:
    return (
        f"Roll back to {registry.REGISTERED_MODEL} model version {target['version']}\n\n"
        f"model sha256: {target['sha']}\n"
        f"image: {target['digest']} (overlays: {', '.join(overlays)})\n"
        f"data.dvc, dvc.lock, {registry.CARD} and reports/ restored from {target['commit']}\n"
        f"MLflow alias {registry.CHAMPION} -> version {target['version']} once this is on main\n\n"
        # GitHub starts no push workflow for this commit: CD would rebuild what is already
        # deployed, and CI would train the restored lock against params.yaml's newer values.
        "[skip ci]\n"
    )


def rollback(version: str, overlays_dir: Path = set_image.OVERLAYS_DIR) -> dict[str, str]:
    """Restore VERSION's image, data and model pointers as one commit (nothing else changes)."""
    target = plan(version)
    paths = [set_image.kustomization(name, overlays_dir) for name in ROLLBACK_OVERLAYS]
    overlays = [p for p in paths if p.exists()]
    if not overlays:
        raise RollbackError(f"no overlay to roll back in {overlays_dir}/ ({ROLLBACK_OVERLAYS})")
    restored = [p.as_posix() for p in RESTORED_PATHS]
    dirty = _uncommitted([*restored, *(p.as_posix() for p in overlays)])
    if dirty:
        raise RollbackError(f"uncommitted changes would be overwritten: {', '.join(dirty)}")
    if _staged_anything():
        raise RollbackError("the Git index has staged changes: commit or unstage them first")
    for path in overlays:
        set_image.set_digest(path, target["digest"])
    _git("restore", f"--source={target['commit']}", "--staged", "--worktree", "--", *restored)
    _git("add", "--", *(p.as_posix() for p in overlays))
    if _staged_anything():
        _git("commit", "-q", "-m", commit_message(target, [p.parent.name for p in overlays]))
        target["rollback_commit"] = _git("rev-parse", "HEAD")
    return target


def move_champion(version: str) -> dict[str, str]:
    """Point `champion` at VERSION, once its rollback commit is on main."""
    target = plan(version)
    client = registry.connect()
    with registry.permitted("move champion", registry.REGISTERED_MODEL):
        client.set_registered_model_alias(
            registry.REGISTERED_MODEL, registry.CHAMPION, target["version"]
        )
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops rollback", description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True, metavar="VERSION", help="model version to restore")
    parser.add_argument(
        "--move-champion",
        action="store_true",
        help="after the rollback commit is pushed: move the champion alias to VERSION",
    )
    args = parser.parse_args(argv)
    try:
        if args.move_champion:
            target = move_champion(args.to)
            print(f"rollback: {registry.CHAMPION} is version {target['version']}")
            return
        target = rollback(args.to)
    except (RollbackError, registry.RegistryError, set_image.OverlayError) as exc:
        sys.exit(f"rollback: {exc}")
    made = target.get("rollback_commit", "no commit needed: the tree already matched")
    print(
        f"rollback: version {target['version']} (image {target['digest']}) restored; "
        f"commit {made}. Push it for Argo CD, then run `churnops rollback --to "
        f"{target['version']} --move-champion`; `dvc pull` gets the data and model files."
    )


if __name__ == "__main__":
    main()
