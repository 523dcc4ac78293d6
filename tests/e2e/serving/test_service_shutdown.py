"""Graceful shutdown: on SIGTERM, `bentoml serve` finishes the request in flight, then exits.

The request is made to be in flight on purpose: its headers and half its body are sent,
SIGTERM goes to the serve process (as Kubernetes sends it to the container's first
process), and only then the rest of the body. It must still be answered with predictions.
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from tests.support.bento_server import Server

pytestmark = pytest.mark.slow


def _read_response(sock: socket.socket) -> bytes:
    sock.settimeout(30)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_sigterm_lets_the_request_in_flight_finish(
    source_server: Server, test_customers: list[dict]
) -> None:
    body = json.dumps({"customers": test_customers[:50]}).encode()
    host, port = source_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.5)  # the worker has started reading the request
        source_server.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # shutdown has begun while the request waits for its body
        sock.sendall(body[len(body) // 2 :])
        response = _read_response(sock)
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 200"), response[:500]
    answer = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert len(answer["predictions"]) == 50
    assert source_server.process.wait(timeout=30) == 0
