"""Answering an ASGI request directly, as the serving middlewares do."""

from __future__ import annotations

from starlette.types import Send


async def send_json(send: Send, status: int, body: bytes) -> None:
    """Send a complete response whose body is already-encoded JSON."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
