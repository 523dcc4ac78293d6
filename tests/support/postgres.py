"""A real PostgreSQL server on a loopback port, in a temporary data directory, for tests.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user
(Debian's package makes it), otherwise as the current user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.support.net import free_port, wait_until
from tests.support.processes import stop_group

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "churnops"


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """initdb and start PostgreSQL; yields the superuser's URL (postgresql://...:PORT/postgres)."""
    home = Path(tempfile.mkdtemp(prefix="churnops-pg-"))
    data, password = home / "data", secrets.token_hex(16)
    (home / "password").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
        shutil.chown(home / "password", "postgres")
    port = free_port()
    log = home / "server.log"
    try:
        subprocess.run(
            _as_server_user(
                [str(BIN / "initdb"), "-D", str(data), "-U", SUPERUSER, "--no-sync",
                 f"--pwfile={home / 'password'}", "--auth=scram-sha-256"]
            ),
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        server = subprocess.Popen(
            _as_server_user(
                [str(BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                 "-k", str(home), "-c", "fsync=off"]
            ),
            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/postgres"

        def answers() -> bool:
            if server.poll() is not None:
                raise RuntimeError(f"postgres exited: {log.read_text()}")
            try:
                with psycopg.connect(url, connect_timeout=5):
                    return True
            except psycopg.OperationalError:
                return False

        try:
            wait_until(answers, 60, "PostgreSQL accepting connections")
            yield url
        finally:
            stop_group(server, timeout=20)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """Create database `name` on the server at `url`; returns its SQLAlchemy URL (psycopg 3)."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    server = url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{server}/{name}"
