"""A Starlette API protected by bearerguard. Run: `python examples/starlette_app.py`."""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bearerguard import ResourceServer
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.integrations.starlette import get_token, requires

REALM = "orders-api"


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@requires("orders.read")
async def orders(request: Request) -> JSONResponse:
    token = get_token(request)
    return JSONResponse({"client_id": token and token.client_id, "orders": [1, 2]})


@requires(any_of=["reports.read", "admin"])
def reports(request: Request) -> JSONResponse:  # sync endpoints work too
    return JSONResponse({"reports": []})


def create_app(server: ResourceServer, *, resource: str | None = None) -> Starlette:
    guard = Middleware(
        BearerAuthMiddleware,
        server=server,
        realm=REALM,
        resource=resource,
        public_paths=["/health"],
    )
    routes = [Route("/health", health), Route("/orders", orders), Route("/reports", reports)]
    return Starlette(routes=routes, middleware=[guard])


if __name__ == "__main__":
    from _local import local_setup

    with local_setup() as (server, base):
        port = int(base.rsplit(":", 1)[1])
        app = create_app(server, resource=base)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
