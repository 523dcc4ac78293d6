"""A real `bentoml serve` process on loopback, for every test that needs the API."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from churnops.ui.client import KEEP_ALIVE
from tests.support.net import free_port, wait_until
from tests.support.processes import stop_group

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90


@dataclass
class Server:
    """A running `bentoml serve` and an HTTP client for it."""

    process: subprocess.Popen
    url: str
    client: httpx.Client
    log: Path

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics (0 when absent)."""
        text = self.client.get("/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return sample.value
        return 0.0

    def predict(self, customers: list[dict]) -> httpx.Response:
        return self.client.post("/predict", json={"customers": customers})


def start_server(target: str, log: Path, cwd: Path, env: dict[str, str] | None = None) -> Server:
    """Start `bentoml serve TARGET` on a free port and wait until /readyz answers 200."""
    port = free_port()
    environment = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})}
    with log.open("w") as out:
        process = subprocess.Popen(
            [BIN / "bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, timeout=30, limits=KEEP_ALIVE)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited:\n{log.read_text()[-3000:]}")
        try:
            return client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    server = Server(process, url, client, log)
    try:
        wait_until(ready, STARTUP_SECONDS, f"bentoml serve {target} ready")
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    server.client.close()
    stop_group(server.process, timeout=30)
