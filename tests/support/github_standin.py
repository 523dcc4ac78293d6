"""A local stand-in for GitHub's repository_dispatch endpoint: the one mock of the drill.

GitHub's API cannot be reached from here, so this tiny HTTP server answers
`POST /repos/{owner}/{repo}/dispatches` as GitHub does (204, or a chosen failure) and
records every call with the time it arrived.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Dispatch:
    arrived: float  # time.monotonic() when the request arrived
    path: str
    authorization: str
    body: dict[str, Any]


class GitHubStandIn:
    """Records repository_dispatch calls; `fail_with` makes it answer that status instead."""

    def __init__(self) -> None:
        self.dispatches: list[Dispatch] = []
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if standin.fail_with is not None:
                    self.send_response(standin.fail_with)
                    self.end_headers()
                    return
                with standin._lock:
                    standin.dispatches.append(
                        Dispatch(
                            time.monotonic(),
                            self.path,
                            self.headers.get("Authorization", ""),
                            body,
                        )
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> GitHubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def count(self) -> int:
        with self._lock:
            return len(self.dispatches)
