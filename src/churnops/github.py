"""GitHub's REST API as churnops calls it: one request, JSON in and out, the documented headers."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"


def request(
    method: str, url: str, token: str, payload: dict[str, Any] | None = None, timeout: float = 30
) -> Any:
    """The decoded JSON answer (None for an empty one); urllib's HTTPError on a non-2xx status."""
    call = urllib.request.Request(
        url,
        method=method,
        data=None if payload is None else json.dumps(payload).encode(),
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": API_VERSION,
            "Content-Type": "application/json",
            "User-Agent": "churnops",
        },
    )
    with urllib.request.urlopen(call, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None
