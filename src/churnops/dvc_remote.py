"""The DVC remote: which one this checkout uses, and why it cannot be read or written.

DVC's own errors seldom say which remote failed or why (a wrong S3 key comes out as
"Forbidden ... HeadObject"), so `make data`, `make ci-pipeline` and `churnops doctor` ask
an S3 remote themselves (a listing, and for a job that pushes a one-object write) and say
in one line which remote, what is wrong and what to check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
)
from dvc.config import Config, ConfigError

CREDENTIALS = (
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE; in GitHub Actions the role "
    "that aws-actions/configure-aws-credentials assumes, docs/setup.md)"
)
# Written by a job that pushes, to prove it may: one empty object beside DVC's files/.
WRITE_PROBE = ".churnops-doctor"
# What each S3 error code means for a DVC remote, and what to check.
S3_ERRORS = {
    "InvalidAccessKeyId": "the server knows no such access key: check AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": (
        "the secret key does not match the access key: check AWS_SECRET_ACCESS_KEY"
    ),
    "ExpiredToken": "the session token has expired: assume the role again",
    "InvalidToken": "the session token is not valid: check AWS_SESSION_TOKEN",
    "NoSuchBucket": "the bucket does not exist: create it, or fix dvc_remote_url in churnops.yaml",
}


@dataclasses.dataclass(frozen=True)
class Remote:
    name: str
    url: str
    endpoint: str = ""  # an S3-compatible server; empty for AWS S3

    def __str__(self) -> str:
        at = f" at {self.endpoint}" if self.endpoint else ""
        return f"DVC remote '{self.name}' ({self.url}{at})"

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")


def default(root: Path = Path(".")) -> Remote | None:
    """The remote `dvc pull` and `dvc push` use here (every config level), or None."""
    try:
        config = Config(dvc_dir=root / ".dvc")
    except ConfigError:
        return None
    name = config["core"].get("remote")
    section = config["remote"].get(name) if name else None
    if not section:
        return None
    return Remote(name, section["url"], section.get("endpointurl", ""))


def s3_problem(
    remote: Remote, env: Mapping[str, str], write: bool = False, timeout: float = 5
) -> str | None:
    """Why the S3 remote cannot be listed (or, with `write`, written) with the credentials in
    `env` (else the default chain), in one line; None if it can."""
    bucket, _, prefix = remote.url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    session = boto3.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
    )
    config = BotoConfig(
        connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1}
    )
    s3 = session.client("s3", endpoint_url=remote.endpoint or None, config=config)
    action = "list"
    try:
        s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1)
        if write:
            action = "write"
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{WRITE_PROBE}".lstrip("/"), Body=b"")
    except NoCredentialsError:
        return f"{remote}: no AWS credentials: set {CREDENTIALS}"
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in S3_ERRORS:
            return f"{remote}: {code}: {S3_ERRORS[code]}"
        if code in ("AccessDenied", "403", "Forbidden"):
            needs = "s3:ListBucket on the bucket and s3:GetObject"
            needs += " and s3:PutObject" if action == "write" else ""
            return (
                f"{remote}: AccessDenied: this identity may not {action} it (its policy needs "
                f"{needs} on {prefix or 'the bucket'}/*, docs/setup.md)"
            )
        return f"{remote}: {code or exc}: check the bucket and its credentials"
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        return f"{remote}: unreachable ({exc}): check dvc_remote_endpoint in churnops.yaml"
    except BotoCoreError as exc:
        return f"{remote}: {exc}"
    return None


def why_unreadable(remote: Remote | None, dvc_output: str, env: Mapping[str, str]) -> str:
    """One line on a failed `dvc pull`: which remote, why, what to check."""
    if remote is None:
        return "no DVC remote is configured (`dvc remote list`; dvc_remote_url in churnops.yaml)"
    errors = [line.removeprefix("ERROR: ") for line in dvc_output.splitlines() if "ERROR" in line]
    if remote.is_s3:
        if any("Unable to locate credentials" in line for line in errors):
            return f"{remote}: no AWS credentials: set {CREDENTIALS}"
        problem = s3_problem(remote, env)
        if problem:
            return problem
    elif "://" not in remote.url and not Path(remote.url).is_dir():
        return f"{remote} does not exist"
    return f"{remote} does not hold everything asked for ({errors[0] if errors else 'dvc pull'})"
