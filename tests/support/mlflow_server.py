"""A real `mlflow server` on loopback with a SQLite backend, for tests."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.net import free_port, wait_until
from tests.support.processes import stop_group


@contextmanager
def mlflow_server(workdir: Path) -> Iterator[str]:
    """Start `mlflow server` with its store in workdir; yields its tracking URI."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    with (workdir / "mlflow-server.log").open("w") as log:
        server = subprocess.Popen(
            [
                str(bin_dir / "mlflow"),
                "server",
                "--host=127.0.0.1",
                f"--port={port}",
                "--workers=1",
                f"--backend-store-uri=sqlite:///{workdir / 'mlflow.db'}",
                f"--artifacts-destination={workdir / 'artifacts'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            # No job runner: it starts eight more processes that tracking does not use.
            env={
                "PATH": f"{bin_dir}:/usr/bin:/bin",
                "HOME": str(workdir),
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            },
            start_new_session=True,  # its own process group: uvicorn goes down with it
        )
        uri = f"http://127.0.0.1:{port}"

        def answers(url: str) -> bool:
            if server.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited: {(workdir / 'mlflow-server.log').read_text()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    return response.status == 200
            except urllib.error.URLError:
                return False

        try:
            wait_until(lambda: answers(f"{uri}/health"), 240, "mlflow server answering /health")
            # The server opens (and migrates) its store on the first API call: do it here.
            search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
            wait_until(lambda: answers(search), 240, "mlflow server's store ready")
            yield uri
        finally:
            stop_group(server, timeout=20)
