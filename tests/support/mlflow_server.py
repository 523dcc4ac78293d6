"""A real `mlflow server` on loopback, for tests.

`mlflow_server` runs it on SQLite with local artifacts; `team_mlflow_server` the way a team
runs it (k8s/mlflow): PostgreSQL for runs, the registry and the users, artifacts in an S3
bucket behind the server, and MLflow's basic-auth app with an admin.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import s3_server
from tests.support.net import free_port, wait_until
from tests.support.postgres import create_database, postgres_server
from tests.support.processes import stop_group

ADMIN = ("admin", "admin-password-for-tests")
BUCKET = "churnops-mlflow"


@dataclass(frozen=True)
class TeamServer:
    uri: str
    admin: tuple[str, str]
    s3_endpoint: str
    database_url: str


def _answers(url: str, auth: tuple[str, str] | None) -> bool:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(":".join(auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status == 200
    except urllib.error.URLError:
        return False


@contextmanager
def _server(
    workdir: Path, options: list[str], env: dict[str, str], auth: tuple[str, str] | None = None
) -> Iterator[str]:
    port = free_port()
    bin_dir = Path(sys.executable).parent
    log_path = workdir / "mlflow-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(bin_dir / "mlflow"), "server", "--host=127.0.0.1", f"--port={port}",
             "--workers=1", *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            # No job runner: it starts eight more processes that tracking does not use.
            env={
                "PATH": f"{bin_dir}:/usr/bin:/bin",
                "HOME": str(workdir),
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                **env,
            },
            start_new_session=True,  # its own process group: uvicorn goes down with it
        )  # fmt: skip
        uri = f"http://127.0.0.1:{port}"

        def answers(url: str) -> bool:
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {log_path.read_text()}")
            return _answers(url, auth)

        try:
            wait_until(lambda: answers(f"{uri}/health"), 240, "mlflow server answering /health")
            # The server opens (and migrates) its store on the first API call: do it here.
            search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
            wait_until(lambda: answers(search), 240, "mlflow server's store ready")
            yield uri
        finally:
            stop_group(server, timeout=20)


@contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    """Start `mlflow server` with its store in workdir; yields its tracking URI."""
    with _server(
        workdir,
        [f"--backend-store-uri=sqlite:///{workdir / 'mlflow.db'}",
         f"--artifacts-destination={workdir / 'artifacts'}"],
        {},
    ) as uri:  # fmt: skip
        yield uri


@contextmanager
def team_mlflow_server(workdir: Path) -> Iterator[TeamServer]:
    """PostgreSQL, the S3 server and `mlflow server --app-name basic-auth` over them."""
    with postgres_server() as postgres, s3_server.s3_server(workdir) as endpoint:
        store, users = create_database(postgres, "mlflow"), create_database(postgres, "mlflow_auth")
        s3_server.client(endpoint).create_bucket(Bucket=BUCKET)
        bucket_key = s3_server.grant(
            endpoint,
            "mlflow-server",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
            [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        )
        s3_server.enforce_auth(endpoint)
        ini = workdir / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = {users}\nadmin_username = {ADMIN[0]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        env = {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "flask-secret-for-tests",
            "MLFLOW_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": bucket_key["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": bucket_key["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": s3_server.REGION,
        }
        options = [
            "--app-name=basic-auth",
            f"--backend-store-uri={store}",
            f"--artifacts-destination=s3://{BUCKET}/mlflow",
        ]
        with _server(workdir, options, env, auth=ADMIN) as uri:
            yield TeamServer(uri, ADMIN, endpoint, store)
