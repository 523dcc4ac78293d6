"""A real `mlflow server` on loopback with a SQLite backend, for tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.net import free_port, wait_until


@contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    """Start `mlflow server` with its store in workdir; yields its tracking URI."""
    port = free_port()
    log = (workdir / "mlflow-server.log").open("w")
    bin_dir = str(Path(sys.executable).parent)
    process = subprocess.Popen(
        [
            f"{bin_dir}/mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--artifacts-destination",
            str(workdir / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(workdir)},
    )
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited: {(workdir / 'mlflow-server.log').read_text()}"
            )
        try:
            return httpx.get(f"{uri}/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(healthy, 90, "mlflow server ready")
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
