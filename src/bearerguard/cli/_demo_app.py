"""The protected API of `bearerguard demo`: a small Starlette app served by uvicorn in a thread.

Lives in the package (not in examples/) so that the demo runs from an installed wheel; needs
the `demo` extra (Starlette and uvicorn).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .._server import ResourceServer
from ..asgi import BearerAuthMiddleware
from ..integrations.starlette import get_token, requires

REALM = "orders-api"
ROUTES = {"/orders": "orders.read", "/computers": "Read Computers"}  # what each route needs
_START_TIMEOUT = 10.0  # seconds; the demo fails rather than waits for ever


def _caller(request: Request) -> dict[str, Any]:
    token = get_token(request)
    assert token is not None  # noqa: S101 - the middleware is not optional here
    return {"client_id": token.client_id, "source": token.source, "scopes": sorted(token.scopes)}


@requires(ROUTES["/orders"])
async def orders(request: Request) -> JSONResponse:
    return JSONResponse({**_caller(request), "orders": [1042, 1043]})


@requires(ROUTES["/computers"])
async def computers(request: Request) -> JSONResponse:
    return JSONResponse({**_caller(request), "computers": ["mac-mini-07"]})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def create_app(server: ResourceServer, *, resource: str) -> Starlette:
    """The API: `/orders` and `/computers` need a scope each, `/health` is public."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await server.aclose()  # the async HTTP client lives on uvicorn's event loop

    app = Starlette(
        routes=[Route("/orders", orders), Route("/computers", computers), Route("/health", health)],
        lifespan=lifespan,
    )
    app.add_middleware(
        BearerAuthMiddleware,
        server=server,
        realm=REALM,
        resource=resource,
        public_paths=["/health"],
    )
    return app


@contextmanager
def serve(server: ResourceServer) -> Iterator[str]:
    """Serve the API on a free port of 127.0.0.1 from a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before uvicorn starts: no race for the port
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        create_app(server, resource=base), log_config=None, log_level="warning", access_log=False
    )
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, name="demo-api")
    thread.daemon = True
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not web.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo API did not start")
            time.sleep(0.01)
        yield base
    finally:
        web.should_exit = True
        thread.join(_START_TIMEOUT)
        sock.close()
