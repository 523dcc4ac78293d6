"""The retrain trigger's HTTP server: POST /alert (authenticated), GET /metrics, GET /healthz.

Whoever can reach the webhook could start production retrains, so: Alertmanager must
present the bearer token from the trigger's Secret (its `http_config.authorization`),
compared in constant time; a body must declare its length and stay under MAX_BODY; a
client has TIMEOUT_SECONDS for each read; at most MAX_CONNECTIONS are served at once.
Anything else gets a 4xx with a fixed reason, one log line and one count, never a
traceback; nothing the sender wrote reaches the log unchecked (notification.py).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from churnops.retraining.notification import MalformedNotification, Notification, parse

log = logging.getLogger("churnops.retraining.webhook")

MAX_BODY = 256 * 1024  # Alertmanager's notification of a few alerts is a few KiB
TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 16


class Receiver(Protocol):
    """What the server needs of the trigger."""

    def webhook_token(self) -> str: ...

    def handle(self, notification: Notification) -> Any: ...


class Refused(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def make_server(
    trigger: Receiver, registry: CollectorRegistry, rejected: Counter, host: str, port: int
) -> ThreadingHTTPServer:
    """The webhook server on host:port; `rejected` counts refusals by reason."""
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def refuse(handler: BaseHTTPRequestHandler, problem: Refused) -> None:
        rejected.labels(problem.reason).inc()
        log.warning("refused: %s (%s)", problem.reason, problem)
        body = json.dumps({"error": problem.reason, "message": str(problem)}).encode()
        headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else {}
        reply(handler, problem.status, body, "application/json", headers)

    class Handler(BaseHTTPRequestHandler):
        timeout = TIMEOUT_SECONDS  # each read of a slow client
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/metrics":
                reply(self, 200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                reply(self, 200, b'{"status":"ok"}', "application/json")
            else:
                refuse(self, Refused(404, "not_found", "no such path"))

        def do_POST(self) -> None:
            try:
                if self.path != "/alert":
                    raise Refused(404, "not_found", "no such path")
                authorize(self.headers.get("Authorization", ""), trigger.webhook_token)
                notification = read_notification(self)
            except Refused as problem:
                self.close_connection = True
                refuse(self, problem)
                return
            decision = trigger.handle(notification)
            # 503 makes Alertmanager retry the notification when GitHub could not be reached.
            status = 503 if decision.decision == "failed" else 200
            payload = {"decision": decision.decision, "reason": decision.reason}
            reply(self, status, json.dumps(payload).encode(), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def process_request(self, request: Any, client_address: Any) -> None:
            if not slots.acquire(blocking=False):  # busy: refuse at once, never queue
                rejected.labels("busy").inc()
                self.shutdown_request(request)
                return
            super().process_request(request, client_address)

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                slots.release()

    return Server((host, port), Handler)


def reply(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def authorize(header: str, token: Callable[[], str]) -> None:
    """Refuse unless the header is `Bearer <the webhook token>` (constant-time compare)."""
    scheme, _, presented = header.partition(" ")
    try:
        expected = token()
    except OSError:
        raise Refused(503, "unauthorized", "the webhook token is not mounted") from None
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise Refused(401, "unauthorized", "a valid bearer token is required")


def read_notification(handler: BaseHTTPRequestHandler) -> Notification:
    """The request's notification: a declared, bounded length of JSON, checked."""
    declared = handler.headers.get("Content-Length")
    if declared is None:
        raise Refused(411, "no_length", "Content-Length is required")
    if not declared.isdigit():
        raise Refused(400, "bad_length", "Content-Length must be a number of bytes")
    if int(declared) > MAX_BODY:
        raise Refused(413, "too_large", f"at most {MAX_BODY} bytes")
    try:
        body = handler.rfile.read(int(declared))
    except TimeoutError:
        raise Refused(408, "timeout", f"the body did not arrive in {TIMEOUT_SECONDS:g} s") from None
    if len(body) < int(declared):
        raise Refused(400, "bad_length", "the body is shorter than its Content-Length")
    try:
        return parse(json.loads(body))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, MalformedNotification):
            raise Refused(400, exc.reason, f"not an Alertmanager notification: {exc}") from None
        raise Refused(400, "invalid_json", "the body is not JSON") from None
