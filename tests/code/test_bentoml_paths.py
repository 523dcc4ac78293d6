"""BentoML's request metrics label a path by its route; any other path shares one label."""

from __future__ import annotations

import asyncio

from churnops.serving import bentoml_paths


def test_routes_keep_their_label_and_everything_else_is_bounded() -> None:
    assert bentoml_paths.label("/predict") == "/predict"
    assert bentoml_paths.label("/static_content/swagger.js") == "/static_content"
    assert bentoml_paths.label("/static_contentX") == "/unknown"
    labels = {bentoml_paths.label(f"/scan/{i}") for i in range(1000)}
    assert labels == {"/unknown"}


def test_the_app_sees_the_real_path_while_metrics_see_the_label(monkeypatch) -> None:
    seen: dict[str, str] = {}

    async def bentoml_call(self, scope, receive, send) -> None:  # what BentoML would record
        seen["label"] = scope["path"]
        await self.app(scope, receive, send)

    async def app(scope, receive, send) -> None:
        seen["routed"] = scope["path"]

    class Middleware:
        _is_setup = True

        def __init__(self) -> None:
            self.app = app

    monkeypatch.setattr(bentoml_paths, "BENTOML_CALL", bentoml_call)
    scope = {"type": "http", "path": "/etc/passwd"}
    asyncio.run(bentoml_paths._call(Middleware(), scope, None, None))
    assert seen == {"label": "/unknown", "routed": "/etc/passwd"}
