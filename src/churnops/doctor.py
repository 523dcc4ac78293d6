"""`churnops doctor --job JOB`: what one workflow job's setup is missing, and what to do.

JOBS says what each job needs: the environment its workflow gives it (secrets arrive as
environment variables), whether it talks to MLflow, and whether it reads or writes the DVC
remote. The doctor checks that each variable is set and not empty (an empty secret is an
error, never a silent fallback), that churnops.yaml is valid and rendered (`churnops init
--check`), that MLflow answers and accepts the credentials, that the DVC remote is there
and accepts the credentials (and is writable for a job that pushes), that a job that
ingests has its source's location (or, for the synthetic source, says that it trains on
generated data), and prints one line
per problem; exit 1 if any.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from churnops import dvc_remote
from churnops import identity as ident
from churnops.config import PARAMS_FILE, load_params

SECRETS_PAGE = "Settings > Secrets and variables > Actions"
GITHUB_APP = "a GitHub App token"


@dataclasses.dataclass(frozen=True)
class Secret:
    """An environment variable a job needs, and the repository secret its workflow maps in."""

    env: str
    secret: str  # the repository secret, or GITHUB_APP for a token minted in the job
    s3_only: bool = False  # needed only when the DVC remote is s3://
    fork_optional: bool = False  # a fork's pull request gets no secrets; the job copes

    def fix(self, identity: ident.Identity | None, verb: str = "add") -> str:
        if self.secret == GITHUB_APP:
            bot = identity.bot if identity else "the repository's bot"
            return (
                f"mint it in the job with actions/create-github-app-token from the repository "
                f"secrets CHURNOPS_APP_ID and CHURNOPS_APP_PRIVATE_KEY (the GitHub App {bot}, "
                f"installed on the repository) and pass it as {self.env}"
            )
        return f"{verb} the repository secret {self.secret} ({SECRETS_PAGE})"


@dataclasses.dataclass(frozen=True)
class Job:
    """One workflow job: where it is, what it needs."""

    workflow: str  # .github/workflows/<workflow>
    job: str  # the job's id in it
    secrets: tuple[Secret, ...] = ()
    mlflow: bool = False  # talks to the MLflow tracking server
    dvc: str | None = None  # "read" or "write" the DVC remote
    ingest: bool = False  # runs `churnops ingest` from params.yaml's ingest.source


# The tracking server's basic-auth identities (`churnops mlflow-access`).
MLFLOW_CI = (  # runs and candidates; cannot move champion
    Secret("MLFLOW_TRACKING_USERNAME", "MLFLOW_CI_USERNAME"),
    Secret("MLFLOW_TRACKING_PASSWORD", "MLFLOW_CI_PASSWORD"),
)
MLFLOW_CD = (  # releases and rollbacks move champion too
    Secret("MLFLOW_TRACKING_USERNAME", "MLFLOW_CD_USERNAME"),
    Secret("MLFLOW_TRACKING_PASSWORD", "MLFLOW_CD_PASSWORD"),
)
BOT = Secret("GH_TOKEN", GITHUB_APP)
DVC_READ = (
    Secret("AWS_ACCESS_KEY_ID", "DVC_REMOTE_READ_ACCESS_KEY_ID", s3_only=True),
    Secret("AWS_SECRET_ACCESS_KEY", "DVC_REMOTE_READ_SECRET_ACCESS_KEY", s3_only=True),
)
DVC_WRITE = (
    Secret("AWS_ACCESS_KEY_ID", "DVC_REMOTE_ACCESS_KEY_ID", s3_only=True),
    Secret("AWS_SECRET_ACCESS_KEY", "DVC_REMOTE_SECRET_ACCESS_KEY", s3_only=True),
)
INGEST_URL = Secret("CHURNOPS_INGEST_URL", "CHURNOPS_INGEST_URL")  # sql and file sources only


def _for_forks(*secrets: Secret) -> tuple[Secret, ...]:
    return tuple(dataclasses.replace(secret, fork_optional=True) for secret in secrets)


JOBS: dict[str, Job] = {
    "ci-test": Job("ci.yml", "test"),
    "ci-train": Job("ci.yml", "gate", _for_forks(*MLFLOW_CI, *DVC_READ), mlflow=True, dvc="read"),
    "ci-commit-back": Job(
        "ci.yml", "gate", (*MLFLOW_CI, *DVC_WRITE, BOT), mlflow=True, dvc="write"
    ),
    "ct": Job(
        "ct.yml", "retrain", (*MLFLOW_CI, *DVC_WRITE, BOT), mlflow=True, dvc="write", ingest=True
    ),
    "cd-build": Job("cd.yml", "build", (*MLFLOW_CD, *DVC_READ), mlflow=True, dvc="read"),
    "cd-staging": Job("cd.yml", "staging", (*MLFLOW_CD, BOT), mlflow=True),
    "cd-production": Job("cd.yml", "production", (*MLFLOW_CD, BOT), mlflow=True),
    "rollback": Job("rollback.yml", "rollback", (*MLFLOW_CD, BOT), mlflow=True),
    "fork-training": Job("fork-training.yml", "mirror", (BOT,)),
}

MLFLOW_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"


@dataclasses.dataclass
class Report:
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def _set(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())


def is_fork_pull_request(env: Mapping[str, str]) -> bool:
    """A pull request from a fork, by the event GitHub Actions describes in $GITHUB_EVENT_PATH."""
    if env.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target"):
        return False
    try:
        event = json.loads(Path(env.get("GITHUB_EVENT_PATH", "")).read_text())
        head = event["pull_request"]["head"]["repo"]["full_name"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return head != env.get("GITHUB_REPOSITORY")


def check_identity(root: Path, report: Report) -> ident.Identity | None:
    try:
        identity = ident.load(root)
        mismatches = ident.check(identity, root)
    except ident.IdentityError as exc:
        report.problems.append(f"{exc}: fix it (docs/setup.md), then `churnops init`")
        return None
    report.problems += [f"{m}: run `churnops init` and commit the result" for m in mismatches]
    return identity


def check_env(
    job: Job, env: Mapping[str, str], identity: ident.Identity | None, report: Report
) -> set[str]:
    """The variables the job needs; the names of those missing."""
    s3 = identity is not None and identity.dvc_remote_url.startswith("s3://")
    fork = is_fork_pull_request(env)
    missing: set[str] = set()
    aws: list[str] = []  # the S3 remote's credentials: one line for all of them
    for secret in job.secrets:
        if _set(env, secret.env) or (secret.s3_only and not s3):
            continue
        missing.add(secret.env)
        state = "empty" if secret.env in env else "not set"
        if secret.fork_optional and fork:
            report.notes.append(
                f"{secret.env} is {state}: a fork's pull request gets no secrets; "
                "the job runs without it"
            )
        elif secret.s3_only:
            aws.append(f"{secret.env} is {state}")
        else:
            report.problems.append(f"{secret.env} is {state}: {secret.fix(identity)}")
    if aws and identity is not None:
        keys = " and ".join(s.secret for s in job.secrets if s.s3_only)
        report.problems.append(
            f"{', '.join(aws)}: the DVC remote {identity.dvc_remote_url} needs AWS credentials: "
            "assume its role with aws-actions/configure-aws-credentials (OIDC, docs/setup.md), "
            f"or add the repository secrets {keys} ({SECRETS_PAGE})"
        )
    return missing


def mlflow_problem(uri: str, env: Mapping[str, str], timeout: float, fix: str) -> str | None:
    """Why MLflow at `uri` cannot serve this job (unreachable, not authorised), or None."""
    headers = {"Accept": "application/json", "User-Agent": "churnops-doctor"}
    if _set(env, "MLFLOW_TRACKING_USERNAME"):
        pair = f"{env['MLFLOW_TRACKING_USERNAME']}:{env.get('MLFLOW_TRACKING_PASSWORD', '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    request = urllib.request.Request(uri.rstrip("/") + MLFLOW_PROBE, headers=headers)
    where = f"MLflow at {uri}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return (
                f"{where} is not authorised (HTTP {exc.code}): the credentials are refused; {fix}"
            )
        return (
            f"{where} answered HTTP {exc.code}: check that mlflow_tracking_uri in "
            "churnops.yaml is the tracking server's base URL"
        )
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return (
            f"{where} is unreachable ({reason}): check mlflow_tracking_uri in churnops.yaml "
            "(or MLFLOW_TRACKING_URI) and that the server is up and reachable from the runner"
        )
    try:
        json.loads(body or b"{}")
    except ValueError:
        return f"{where} answered, but not as MLflow's REST API (a login page?): check the URL"
    return None


def check_mlflow(
    job: Job,
    env: Mapping[str, str],
    identity: ident.Identity | None,
    missing: set[str],
    timeout: float,
    report: Report,
) -> None:
    uri = env.get("MLFLOW_TRACKING_URI", "").strip() or (
        identity.mlflow_tracking_uri if identity else ""
    )
    if not uri:
        return  # churnops.yaml's problem is already said
    if not uri.startswith(("http://", "https://")):
        report.notes.append(f"MLflow: {uri} is a local store, nothing to reach")
        return
    username, password = (s for s in job.secrets if s.env.startswith("MLFLOW_TRACKING_"))
    absent = [s.env for s in (username, password) if s.env in missing]
    if absent:
        report.notes.append(f"MLflow at {uri}: not checked until {' and '.join(absent)} are set")
        return
    problem = mlflow_problem(uri, env, timeout, password.fix(identity, "replace"))
    if problem:
        report.problems.append(problem)


def check_dvc(
    job: Job,
    env: Mapping[str, str],
    identity: ident.Identity | None,
    missing: set[str],
    timeout: float,
    report: Report,
) -> None:
    if identity is None:
        return
    url = identity.dvc_remote_url
    if url.startswith("s3://"):
        remote = dvc_remote.Remote(ident.DVC_REMOTE, url, identity.dvc_remote_endpoint)
        if missing & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}:
            report.notes.append(f"{remote}: not checked until its AWS credentials are set")
            return
        problem = dvc_remote.s3_problem(remote, env, job.dvc == "write", timeout)
        if problem:
            report.problems.append(problem)
        return
    if not url.startswith("/"):
        scheme = url.partition("://")[0]
        report.notes.append(
            f"DVC remote {url}: not checked (a {scheme} remote: `dvc pull`/`dvc push` say "
            "whether its credentials work)"
        )
        return
    remote = Path(url)
    todo = "or set dvc_remote_url in churnops.yaml to the team's remote and run `churnops init`"
    if not remote.is_dir():
        state = "is not a directory" if remote.exists() else "does not exist"
        report.problems.append(f"DVC remote {url} {state}: create it (mkdir -p {url}) {todo}")
    elif job.dvc == "write" and not os.access(remote, os.W_OK | os.X_OK):
        report.problems.append(
            f"DVC remote {url} is not writable by this user and the job pushes to it: "
            f"give it write access {todo}"
        )


def check_ingest(
    env: Mapping[str, str], identity: ident.Identity | None, root: Path, report: Report
) -> None:
    source = load_params(root / PARAMS_FILE)["ingest"]["source"]
    if source == "synthetic":
        report.notes.append(
            "ingest.source in params.yaml is synthetic: CT trains on generated data (a drill "
            f"or demo); for real data set sql or file and the secret {INGEST_URL.secret}"
        )
    elif not _set(env, INGEST_URL.env):
        state = "empty" if INGEST_URL.env in env else "not set"
        report.problems.append(
            f"{INGEST_URL.env} is {state}: the {source} source (params.yaml ingest.source) "
            f"reads what it names; {INGEST_URL.fix(identity)}"
        )


def diagnose(
    name: str, env: Mapping[str, str], root: Path = Path("."), timeout: float = 5
) -> Report:
    job = JOBS[name]
    report = Report()
    identity = check_identity(root, report)
    missing = check_env(job, env, identity, report)
    if job.mlflow:
        check_mlflow(job, env, identity, missing, timeout, report)
    if job.dvc:
        check_dvc(job, env, identity, missing, timeout, report)
    if job.ingest:
        check_ingest(env, identity, root, report)
    return report


def main(
    argv: list[str] | None = None, env: Mapping[str, str] | None = None, root: Path = Path(".")
) -> None:
    parser = argparse.ArgumentParser(prog="churnops doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, choices=list(JOBS), help="the workflow job")
    parser.add_argument("--timeout", type=float, default=5, help="seconds per network check")
    args = parser.parse_args(argv)
    report = diagnose(args.job, os.environ if env is None else env, root, args.timeout)
    for line in report.problems:
        print(f"doctor: {line}")
    for line in report.notes:
        print(f"doctor: note: {line}")
    job = JOBS[args.job]
    where = f".github/workflows/{job.workflow} job {job.job}"
    if report.problems:
        sys.exit(f"doctor {args.job} ({where}): {len(report.problems)} to fix")
    print(f"doctor {args.job} ({where}): ready")


if __name__ == "__main__":
    main()
