"""A local stand-in for the two GitHub Actions endpoints the retrain trigger calls.

GitHub's API cannot be reached from here, so this small HTTP server answers as GitHub's
REST API documents them:

- `POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches` with
  `{"ref": ..., "inputs": {...}}`: 204 and a new run; 401 `Bad credentials` for another
  token, 404 for an unknown repository or workflow, 422 for a missing ref, unexpected or
  non-string inputs, or more than 10 inputs;
- `GET .../actions/workflows/{workflow}/runs?event=&per_page=&page=`: the runs, newest
  first, paginated (`per_page` at most 100, default 30), with `total_count`.

A run's `display_title` is the workflow's `run-name` rendered with its inputs (RUN_NAME,
which tests/gitops checks against ct.yml). Every dispatch is recorded with its arrival.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

WORKFLOW = "ct.yml"
INPUTS = ("reason", "features", "episodes", "scenario")  # ct.yml's workflow_dispatch inputs
# ct.yml's `run-name: "ct: ${{ inputs.reason || github.event_name }} ${{ inputs.episodes }}"`
RUN_NAME = "ct: {reason} {episodes}"
_PATH = re.compile(r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)/(dispatches|runs)")


@dataclass(frozen=True)
class Dispatch:
    arrived: float  # time.monotonic() when the request arrived
    path: str
    authorization: str
    body: dict[str, Any]


class GitHubStandIn:
    """Records workflow dispatches as runs; `fail_with` makes it answer that status instead."""

    def __init__(self, repository: str = "churnops/churnops", token: str | None = None) -> None:
        self.repository = repository
        self.token = token  # None: any bearer token is accepted
        self.dispatches: list[Dispatch] = []
        self.runs: list[dict[str, Any]] = []  # newest last
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, payload: Any = None) -> None:
                body = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self) -> tuple[str, str] | None:
                match = _PATH.fullmatch(urlparse(self.path).path)
                if not match or match[1] != standin.repository or match[2] != WORKFLOW:
                    self._answer(404, {"message": "Not Found"})
                    return None
                authorization = self.headers.get("Authorization", "")
                if not authorization.startswith("Bearer ") or (
                    standin.token is not None and authorization != f"Bearer {standin.token}"
                ):
                    self._answer(401, {"message": "Bad credentials"})
                    return None
                return match[3], authorization

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                route = self._route()
                if route is None:
                    return
                if route[0] != "dispatches":
                    self._answer(404, {"message": "Not Found"})
                    return
                if standin.fail_with is not None:
                    self._answer(standin.fail_with, {"message": "Server Error"})
                    return
                problem = standin._invalid(body)
                if problem:
                    self._answer(422, {"message": problem})
                    return
                standin._record(Dispatch(time.monotonic(), self.path, route[1], body))
                self._answer(204)

            def do_GET(self) -> None:
                route = self._route()
                if route is None:
                    return
                query = parse_qs(urlparse(self.path).query)
                per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                page = int(query.get("page", ["1"])[0])
                event = query.get("event", [None])[0]
                with standin._lock:
                    runs = [r for r in reversed(standin.runs) if event in (None, r["event"])]
                shown = runs[(page - 1) * per_page : page * per_page]
                self._answer(200, {"total_count": len(runs), "workflow_runs": shown})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @staticmethod
    def _invalid(body: dict[str, Any]) -> str | None:
        inputs = body.get("inputs", {})
        if not isinstance(body.get("ref"), str):
            return 'Invalid request.\n\n"ref" wasn\'t supplied.'
        if not isinstance(inputs, dict) or len(inputs) > 10:
            return "Invalid request. You can only pass 10 inputs."
        unexpected = sorted(set(inputs) - set(INPUTS))
        if unexpected:
            return f"Unexpected inputs provided: {unexpected}"
        if not all(isinstance(v, str) for v in inputs.values()):
            return "Invalid request. Inputs must be strings."
        return None

    def _record(self, dispatch: Dispatch) -> None:
        inputs = dispatch.body.get("inputs", {})
        with self._lock:
            self.dispatches.append(dispatch)
            self.runs.append(
                {
                    "id": len(self.runs) + 1,
                    "event": "workflow_dispatch",
                    "status": "queued",
                    "head_branch": dispatch.body["ref"],
                    "display_title": RUN_NAME.format(
                        reason=inputs.get("reason") or "workflow_dispatch",
                        episodes=inputs.get("episodes", ""),
                    ).strip(),
                    "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
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
