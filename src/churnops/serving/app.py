"""The ASGI app BentoML mounts: GET /metadata, and the state the middlewares read.

`state.served` holds the loaded model (endpoint.py answers POST /predict from it) and
`state.openapi` the encoded OpenAPI document (openapi.py serves it at /docs.json).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def metadata(request: Request) -> JSONResponse:
    """Which model is serving: its card, lineage and `serve` settings."""
    served = getattr(request.app.state, "served", None)
    if served is None:
        return JSONResponse(
            {"error": "not_ready", "message": "the model is still loading"}, status_code=503
        )
    return JSONResponse(served.metadata)


def new_app() -> Starlette:
    return Starlette(routes=[Route("/metadata", metadata, methods=["GET"])])
