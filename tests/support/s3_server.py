"""A real S3-compatible server on loopback (moto's standalone server), with IAM users.

moto answers every request until `enforce_auth` is called; from then on it checks each
request's signature against the access keys made by `grant` and the user's IAM policy, as
AWS does (403 InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from tests.support.net import free_port, wait_until
from tests.support.processes import stop_group

REGION = "us-east-1"


def client(endpoint: str, service: str = "s3", key: dict[str, str] | None = None):
    """A boto3 client for the server; without `key`, moto's pre-enforcement admin."""
    key = key or {"aws_access_key_id": "admin", "aws_secret_access_key": "admin"}
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **key)


@contextmanager
def s3_server(workdir: Path) -> Iterator[str]:
    """Start moto's S3 server; yields its endpoint URL (http://127.0.0.1:PORT)."""
    port = free_port()
    with (workdir / "s3-server.log").open("w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        endpoint = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if server.poll() is not None:
                raise RuntimeError(f"moto_server exited: {(workdir / 's3-server.log').read_text()}")
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:
                return response.status == 200

        try:
            wait_until(answers, 60, "moto's S3 server answering")
            yield endpoint
        finally:
            stop_group(server, timeout=10)


def grant(endpoint: str, user: str, actions: list[str], resources: list[str]) -> dict[str, str]:
    """Create IAM `user` allowed only `actions` on `resources`; returns boto3 key arguments."""
    iam = client(endpoint, "iam")
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}],
    }
    iam.put_user_policy(UserName=user, PolicyName=user, PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }


def enforce_auth(endpoint: str) -> None:
    """From now on every request must be signed by a key from `grant` and allowed by its policy."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
