"""The apps served by uvicorn for the over-HTTP group: `uvicorn --factory http_app:bare` and
`http_app:protected` (configured from `BEARERGUARD_*` variables, keys fetched at start-up)."""

from __future__ import annotations

from apps import starlette_app
from starlette.applications import Starlette

from bearerguard import ResourceServer
from bearerguard.asgi import BearerAuthMiddleware


def bare() -> Starlette:
    return starlette_app(guarded=False)


def protected() -> BearerAuthMiddleware:
    server = ResourceServer.from_env()
    for status in server.warm():
        if not status.fresh:
            raise RuntimeError(f"could not fetch the keys of {status.issuer}: {status.last_error}")
    return BearerAuthMiddleware(starlette_app(guarded=True), server=server)
