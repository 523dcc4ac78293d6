"""`churnops init`: make the repository yours, or check that it is consistently so.

`churnops init --repository OWNER/NAME` writes churnops.yaml (every value not given as a
flag derived from OWNER/NAME, or kept from churnops.yaml when it already names that
repository) and renders it into every file of identity.FIELDS. `churnops init` alone
renders churnops.yaml as it is (after a hand edit); `churnops init --check` exits 1 listing
the fields out of date. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from churnops import identity as ident

# flag -> the Identity values it sets
FLAGS = {
    "git_url": "--git-url",
    "image_repository": "--image-repository",
    "ui_image_repository": "--ui-image-repository",
    "dvc_remote_url": "--dvc-remote-url",
    "dvc_remote_endpoint": "--dvc-remote-endpoint",
    "mlflow_tracking_uri": "--mlflow-uri",
    "staging_hostname": "--staging-host",
    "production_hostname": "--production-host",
    "bot": "--bot",
    "ct_runner": "--ct-runner",
}


def derived(repository: str) -> dict[str, str]:
    """The values a fork named `repository` gets unless it says otherwise."""
    owner, _, name = repository.lower().partition("/")
    prefix = re.sub(r"[^a-z0-9-]+", "-", name).strip("-")
    return {
        "repository": repository,
        "git_url": ident.default_git_url(repository),
        "image_repository": f"ghcr.io/{owner}/{name}-service",
        "ui_image_repository": f"ghcr.io/{owner}/{name}-ui",
        # A local folder, never a bucket name guessed from the repository's: anyone can
        # create that bucket, and pushes would go to it (docs/setup.md).
        "dvc_remote_url": f"/var/tmp/{prefix}/dvc-remote",
        "dvc_remote_endpoint": "",
        "mlflow_tracking_uri": "https://mlflow.example.invalid",
        "staging_namespace": f"{prefix}-staging",
        "production_namespace": f"{prefix}-production",
        "staging_hostname": f"{prefix}.staging.example.invalid",
        "production_hostname": f"{prefix}.example.invalid",
        "bot": f"{prefix}-bot[bot]",
        "ct_runner": ident.CT_HOSTED_RUNNER,
    }


def planned(args: argparse.Namespace, existing: ident.Identity | None) -> ident.Identity:
    """The identity the flags ask for, on top of churnops.yaml's when it names that repository."""
    if existing is not None and existing.repository == args.repository:
        values = existing.values()
    else:
        values = derived(args.repository)
    values.update({key: getattr(args, key) for key in FLAGS if getattr(args, key) is not None})
    if args.namespace_prefix is not None:
        values["staging_namespace"] = f"{args.namespace_prefix}-staging"
        values["production_namespace"] = f"{args.namespace_prefix}-production"
    raw = {key: value for key, value in values.items() if key not in ident.ALIASES.values()}
    for outer, pairs in ident.NESTED.items():
        raw[outer] = {inner: values[flat] for inner, flat in pairs.items()}
    return ident.validate(raw)


def existing_identity(root: Path) -> ident.Identity | None:
    return ident.load(root) if (root / ident.IDENTITY_FILE).exists() else None


def run_check(root: Path) -> int:
    mismatches = ident.check(ident.load(root), root)
    for mismatch in mismatches:
        print(f"init --check: {mismatch}")
    if mismatches:
        files = ", ".join(dict.fromkeys(m.field.path for m in mismatches))
        print(f"init --check: out of date: {files}; run `churnops init` to render churnops.yaml")
        return 1
    print(f"init --check: all {len(ident.FIELDS)} rendered fields match {ident.IDENTITY_FILE}")
    return 0


def run_init(args: argparse.Namespace, root: Path) -> None:
    existing = existing_identity(root)
    if args.repository is None:
        if existing is None:
            raise ident.IdentityError(
                f"{ident.IDENTITY_FILE}: not found; run `churnops init --repository OWNER/NAME`"
            )
        wanted = existing
    else:
        wanted = planned(args, existing)
        if wanted != existing:
            (root / ident.IDENTITY_FILE).write_text(ident.dump(wanted, args.git_url is not None))
            print(f"init: wrote {ident.IDENTITY_FILE} for {wanted.repository}")
    changed = ident.render(wanted, root)
    for field in changed:
        print(f"init: {field.path}: {field.location} = {field.expected(wanted) or '(none)'}")
    if not changed:
        print(f"init: all {len(ident.FIELDS)} rendered fields already match {ident.IDENTITY_FILE}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="churnops init", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 listing the fields out of date")
    p.add_argument("--repository", metavar="OWNER/NAME", help="the GitHub repository")
    p.add_argument("--git-url", dest="git_url", help="default https://github.com/OWNER/NAME.git")
    p.add_argument("--image-repository", help="default ghcr.io/owner/name-service")
    p.add_argument("--ui-image-repository", help="default ghcr.io/owner/name-ui")
    p.add_argument(
        "--dvc-remote-url", help="s3://BUCKET/PREFIX or a path; default /var/tmp/name/dvc-remote"
    )
    p.add_argument(
        "--dvc-remote-endpoint", help="an S3-compatible server's URL; default empty (AWS S3)"
    )
    p.add_argument(
        "--mlflow-uri", dest="mlflow_tracking_uri", help="default https://mlflow.example.invalid"
    )
    p.add_argument(
        "--staging-host", dest="staging_hostname", help="default name.staging.example.invalid"
    )
    p.add_argument(
        "--production-host", dest="production_hostname", help="default name.example.invalid"
    )
    p.add_argument("--namespace-prefix", help="namespaces PREFIX-staging, PREFIX-production (name)")
    p.add_argument("--bot", help="the GitHub App's login, default name-bot[bot]")
    p.add_argument(
        "--ct-runner", help="runs-on label of continuous training, default ubuntu-latest"
    )
    return p


def main(argv: list[str] | None = None, root: Path = Path(".")) -> None:
    p = parser()
    args = p.parse_args(argv)
    given = [f for f in (*FLAGS, "namespace_prefix") if getattr(args, f) is not None]
    if args.check and (given or args.repository):
        p.error("--check takes no other flag")
    if given and args.repository is None:
        p.error("--repository is needed with the other flags")
    try:
        if args.check:
            sys.exit(run_check(root))
        run_init(args, root)
    except ident.IdentityError as exc:
        sys.exit(f"init: {exc}")


if __name__ == "__main__":
    main()
