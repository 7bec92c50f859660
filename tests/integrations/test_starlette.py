"""Starlette: the example app through the error table, `requires()` shapes, Starlette's own auth."""

from __future__ import annotations

from typing import Any

import pytest
import starlette.authentication
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket, WebSocketDisconnect
from starlette_app import create_app

from bearerguard import ResourceServer
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.integrations.starlette import get_token, requires
from bearerguard.testing import LocalIssuer

from ..helpers import aclose_on
from .conftest import RESOURCE, ROWS, Row, asgi_caller, check_row


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_starlette_example_answers_the_error_table(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row
) -> None:
    with TestClient(create_app(server, resource=RESOURCE)) as client:
        check_row(row, local_issuer, asgi_caller(client))
        aclose_on(client, server)


def test_starlette_example_metadata_gathers_declared_scopes(server: ResourceServer) -> None:
    with TestClient(create_app(server, resource=RESOURCE)) as client:
        document = client.get("/.well-known/oauth-protected-resource/v1").json()
    assert document["scopes_supported"] == ["admin", "orders.read", "reports.read"]


class Orders(HTTPEndpoint):
    @requires("orders.read")
    async def get(self, request: Request) -> Response:
        return JSONResponse({"user": request.user.display_name, "scopes": request.auth.scopes})

    @requires("orders.write")
    def post(self, request: Request) -> Response:
        return JSONResponse({"ok": True})


@starlette.authentication.requires("orders.read")
async def starlette_own(request: Request) -> Response:
    return JSONResponse({"authenticated": request.user.is_authenticated})


@requires("orders.read", optional=True)
async def maybe(request: Request) -> Response:
    token = get_token(request)
    return JSONResponse({"client": token and token.client_id})


@requires("chat")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


def _app(server: ResourceServer, **options: Any) -> Starlette:
    routes = [
        Route("/orders", Orders),
        Route("/own", starlette_own),
        Route("/maybe", maybe),
        WebSocketRoute("/chat", chat),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(BearerAuthMiddleware, server=server, **options)]
    )


def test_starlette_http_endpoint_methods_sync_and_async(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    headers = {"authorization": "Bearer " + local_issuer.mint(scope="orders.read")}
    with TestClient(_app(server)) as client:
        got = client.get("/orders", headers=headers)
        refused = client.post("/orders", headers=headers)
        aclose_on(client, server)
    assert got.json() == {"user": "test-client", "scopes": ["orders.read"]}
    assert refused.status_code == 403
    assert refused.headers["www-authenticate"].endswith('scope="orders.write"')


def test_starlette_own_requires_and_request_user_work(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    with TestClient(_app(server)) as client:
        ok = client.get(
            "/own", headers={"authorization": "Bearer " + local_issuer.mint(scope="orders.read")}
        )
        refused = client.get("/own", headers={"authorization": "Bearer " + local_issuer.mint()})
        aclose_on(client, server)
    assert ok.json() == {"authenticated": True}
    assert refused.status_code == 403  # Starlette's own decorator sees request.auth.scopes


def test_starlette_optional_route_behind_an_optional_middleware(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    with TestClient(_app(server, optional=True)) as client:
        anonymous = client.get("/maybe")
        with_scope = client.get(
            "/maybe", headers={"authorization": "Bearer " + local_issuer.mint(scope="orders.read")}
        )
        without_scope = client.get(
            "/maybe", headers={"authorization": "Bearer " + local_issuer.mint()}
        )
        required = client.get("/orders")
        aclose_on(client, server)
    assert anonymous.json() == {"client": None}
    assert with_scope.json() == {"client": "test-client"}
    assert without_scope.status_code == 403
    assert required.status_code == 401
    assert required.headers["www-authenticate"] == "Bearer"


def test_starlette_websocket_endpoint_scope_refusal_is_a_real_403(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    with TestClient(_app(server)) as client:
        headers = {"authorization": "Bearer " + local_issuer.mint(scope="chat")}
        with client.websocket_connect("/chat", headers=headers) as ws:
            assert ws.receive_text() == "hello"
        headers = {"authorization": "Bearer " + local_issuer.mint(scope="other")}
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/chat", headers=headers),
        ):
            pass
        aclose_on(client, server)
    # Starlette's TestClient offers the websocket.http.response extension: a real 403 is sent.
    denial = closed.value
    assert isinstance(denial, WebSocketDenialResponse)
    assert denial.status_code == 403
    assert denial.headers["www-authenticate"].endswith('scope="chat"')


def test_starlette_requires_checks_the_endpoint_at_decoration() -> None:
    with pytest.raises(TypeError, match="no 'request' or 'websocket' parameter"):

        @requires("a")
        async def endpoint(req: Request) -> Response:
            return Response()


def test_starlette_get_token_without_middleware_is_a_clear_error(server: ResourceServer) -> None:
    app = Starlette(routes=[Route("/maybe", maybe)])
    with TestClient(app) as client, pytest.raises(RuntimeError, match="BearerAuthMiddleware"):
        client.get("/maybe")


def test_starlette_requires_says_so_when_a_later_middleware_replaced_the_user(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    class ReplacesUser:  # e.g. a second authentication middleware behind ours
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                scope["user"] = starlette.authentication.UnauthenticatedUser()
            await self.app(scope, receive, send)

    app = Starlette(
        routes=[Route("/orders", Orders)],
        middleware=[Middleware(BearerAuthMiddleware, server=server), Middleware(ReplacesUser)],
    )
    headers = {"authorization": "Bearer " + local_issuer.mint(scope="orders.read")}
    with TestClient(app) as client:
        with pytest.raises(RuntimeError, match="replaced"):
            client.get("/orders", headers=headers)
        aclose_on(client, server)
