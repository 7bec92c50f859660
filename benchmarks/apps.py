"""The apps the middleware groups measure, and how to call them without a server.

Each request is a fresh ASGI scope or WSGI environ built here, as a server would, with the
`Authorization` value given as bytes (ASGI) or a str (WSGI): the middleware decodes and hashes a
new token string on every request, as it does behind a real server. `httpx.ASGITransport` is not
used: it costs more than what is measured. `MinimalGuard`/`minimal_wsgi_guard` are the reference
middlewares: find the header, cut `Bearer `, the minimal verifier of reference.py keeping its
results (`Verifier.check`: a hit is a lookup), call the app. `fastapi_app` has the same route
with no dependency, a do-nothing one, FastAPI's own `HTTPBearer`, bearerguard's `requires()` and a
minimal dependency on the minimal verifier.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from flask import Flask
from reference import Refused, Verifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.test import EnvironBuilder

from bearerguard import AccessToken  # FastAPI reads the route's annotations at run time
from bearerguard._types import ASGIApp as ASGI
from bearerguard._types import Message, Scope
from bearerguard._types import WSGIApp as WSGI
from bearerguard.integrations.fastapi import BearerAuth
from bearerguard.integrations.starlette import requires

if TYPE_CHECKING:
    from bearerguard import ResourceServer


async def _orders(request: Request) -> Response:
    return PlainTextResponse("ok")


@requires("orders.read")
async def _scoped(request: Request) -> Response:
    return PlainTextResponse("ok")


def starlette_app(*, guarded: bool) -> Starlette:
    """`/orders`, plus `/scoped` behind `requires("orders.read")` when `guarded` (the requirement
    reads the token the middleware left; without a middleware it has none)."""
    routes = [Route("/orders", _orders)]
    if guarded:
        routes.append(Route("/scoped", _scoped))
    return Starlette(routes=routes)


def _scope(path: str, authorization: bytes) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"api.example.test"),
            (b"user-agent", b"bench/1"),
            (b"accept", b"*/*"),
            (b"authorization", authorization),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    return None


def asgi_caller(app: ASGI, path: str) -> Callable[[bytes], Awaitable[None]]:
    """`await call(authorization)`: one request to `path`, its response thrown away."""

    async def call(authorization: bytes) -> None:
        await app(_scope(path, authorization), _receive, _discard)

    return call


async def asgi_status(app: ASGI, path: str, authorization: bytes) -> int:
    """The status `app` answers with: set-up checks that every measured request succeeds."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(_scope(path, authorization), _receive, send)
    return int(sent[0]["status"])


class PassThrough:
    """An ASGI middleware that does nothing: what adding any middleware layer costs."""

    def __init__(self, app: ASGI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class MinimalGuard:
    """The reference ASGI middleware: the minimal verifier in front of the app, nothing else."""

    def __init__(self, app: ASGI, verifier: Verifier) -> None:
        self.app, self.verifier = app, verifier

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        value = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, token = value.decode("latin-1").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise Refused("no bearer token")
            scope["claims"] = self.verifier.check(token)
        except Refused:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def fastapi_app(server: ResourceServer, verifier: Verifier) -> FastAPI:
    """`/bare`, `/noop`, `/httpbearer`, `/requires` and `/minimal`: one route, five guards."""
    app = FastAPI()
    auth = BearerAuth(server, token_url="https://login.example.test/oauth2/token")
    auth.install(app)
    bearer = HTTPBearer()

    # Async dependencies: FastAPI runs a plain `def` one in a thread pool (~100 µs more).
    async def noop() -> None:
        return None

    async def minimal(request: Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise Refused("no bearer token")
        return verifier.check(token)

    @app.get("/bare")
    async def bare() -> str:
        return "ok"

    @app.get("/noop")
    async def nothing(_: None = Depends(noop)) -> str:
        return "ok"

    @app.get("/httpbearer")
    async def httpbearer(_: HTTPAuthorizationCredentials = Security(bearer)) -> str:  # noqa: B008
        return "ok"

    @app.get("/requires")
    async def required(_: AccessToken = auth.requires("orders.read")) -> str:  # noqa: B008
        return "ok"

    @app.get("/minimal")
    async def reference(_: dict[str, Any] = Depends(minimal)) -> str:  # noqa: B008
        return "ok"

    return app


# -- WSGI ------------------------------------------------------------------------------------


def plain_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain"), ("content-length", "2")])
    return [b"ok"]


def flask_app() -> Flask:
    app = Flask("bench")

    @app.get("/orders")
    def orders() -> str:
        return "ok"

    return app


def wsgi_caller(app: WSGI, path: str) -> Callable[[str], None]:
    """`call(authorization)`: one request to `path` on a copy of a server-made environ."""
    template = EnvironBuilder(path=path, headers=[("Host", "api.example.test")]).get_environ()

    def call(authorization: str) -> None:
        environ = template.copy()
        environ["HTTP_AUTHORIZATION"] = authorization
        body = app(environ, _start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return call


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    if not status.startswith("200"):
        raise AssertionError(f"a measured WSGI request was answered {status}")


def minimal_wsgi_guard(app: WSGI, verifier: Verifier) -> WSGI:
    """The reference WSGI middleware (a refusal raises: nothing measured is refused)."""

    def guard(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            raise Refused("no bearer token")
        environ["claims"] = verifier.check(token)
        return app(environ, start_response)

    return guard
