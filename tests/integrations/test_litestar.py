"""Litestar: `BearerAuthPlugin` and the `requires()` guard with the real Litestar, through the
error table (sync and async handlers) with Litestar's test client, and over HTTP with uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar, Request, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from bearerguard import AccessToken, Requirement, ResourceServer
from bearerguard._guard import GuardOptions
from bearerguard.asgi import BearerAuthMiddleware, TokenUser
from bearerguard.integrations.litestar import BearerAuthPlugin, get_token, requires
from bearerguard.testing import LocalIssuer
from bearerguard.testing._testkit import issuer_config

from .conftest import REALM, RESOURCE, ROWS, Answer, Call, Row, check_row, raw_asgi_caller
from .mcp_support import free_port, serve

LitestarRequest = Request[TokenUser, AccessToken, State]


@get("/orders", guards=[requires("orders.read")])
async def orders(request: LitestarRequest) -> dict[str, Any]:
    assert request.auth is get_token(request)
    assert request.user.token is request.auth and request.user.is_authenticated
    return {"client_id": request.auth.client_id}


@get("/reports", guards=[requires(any_of=["reports.read", "admin"])], sync_to_thread=False)
def reports() -> dict[str, list[str]]:  # a sync handler
    return {"reports": []}


@get("/maybe", guards=[requires("orders.read", optional=True)])
async def maybe(request: LitestarRequest) -> dict[str, Any]:
    token = get_token(request)
    return {"client_id": token.client_id if token else None}


@get("/checked")
async def checked(request: LitestarRequest) -> dict[str, bool]:
    Requirement.of("admin").check(request.auth)  # raised in the handler: a 403, not a 500
    return {"admin": True}


@get("/health", sync_to_thread=False)
def health() -> dict[str, bool]:
    return {"ok": True}


def create_app(server: ResourceServer, **options: Any) -> Litestar:
    settings: GuardOptions = {"realm": REALM, "resource": RESOURCE, "public_paths": ["/health"]}
    plugin = BearerAuthPlugin(server, **{**settings, **options})
    handlers = [orders, reports, maybe, checked, health]
    # logging_config=None: Litestar's own would replace the root handlers pytest captures with.
    return Litestar(handlers, plugins=[plugin], logging_config=None)


@contextmanager
def litestar_caller(server: ResourceServer, **options: Any) -> Iterator[Call]:
    with TestClient(create_app(server, **options)) as client:

        def call(path: str, authorization: list[str]) -> Answer:
            headers = [("authorization", value) for value in authorization]
            response = client.get(path, headers=headers)
            return Answer(response.status_code, dict(response.headers), response.content)

        yield call
        client.blocking_portal.call(server.aclose)


@pytest.mark.parametrize("optional", [False, True], ids=["required", "optional"])
@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_litestar_answers_the_error_table(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row, optional: bool
) -> None:
    # optional: tokenless requests reach the guard, which refuses them through the handler.
    with litestar_caller(server, optional=optional) as call:
        answer = check_row(row, local_issuer, call)
    if row.name == "ok":
        assert answer.json() == {"client_id": "test-client"}


def test_litestar_optional_requirement(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    with litestar_caller(server, optional=True) as call:
        assert call("/maybe", []).json() == {"client_id": None}
        token = local_issuer.mint(scope="orders.read")
        assert call("/maybe", [f"Bearer {token}"]).json() == {"client_id": "test-client"}
        assert call("/maybe", [f"Bearer {local_issuer.mint()}"]).status == 403


def test_litestar_requirement_checked_in_a_handler_is_a_403_with_its_challenge(
    local_issuer: LocalIssuer, server: ResourceServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = local_issuer.mint(scope="orders.read")
    with litestar_caller(server) as call, caplog.at_level(logging.WARNING, "bearerguard"):
        refused = call("/checked", [f"Bearer {token}"])
        admin = call("/checked", [f"Bearer {local_issuer.mint(scope='admin')}"])
    assert refused.status == 403
    assert refused.headers["www-authenticate"] == (
        f'Bearer realm="{REALM}", error="insufficient_scope", error_description="The access '
        'token lacks a required scope.", scope="admin", resource_metadata="https://api.'
        'example.test/.well-known/oauth-protected-resource/v1"'
    )
    assert refused.headers["cache-control"] == "no-store"
    assert admin.json() == {"admin": True}
    assert [r.getMessage() for r in caplog.records] == [
        f"refused: SCOPE iss='{local_issuer.issuer}' client_id='test-client' required='admin'"
    ]


def test_litestar_public_paths_and_rfc9728_document(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    local_issuer.go_down("refuse")
    with litestar_caller(server) as call:
        assert call("/health", []).json() == {"ok": True}
        document = call("/.well-known/oauth-protected-resource/v1", [])
    assert document.json() == {
        "resource": RESOURCE,
        "authorization_servers": [local_issuer.issuer],
        "scopes_supported": ["admin", "orders.read", "reports.read"],  # from the guards
        "bearer_methods_supported": ["header"],
    }


def test_litestar_over_http_with_uvicorn(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    app = create_app(server)
    app.on_shutdown.append(server.aclose)
    token = local_issuer.mint(scope="orders.read")
    with serve(app, free_port()) as base:
        ok = httpx.get(base + "/orders", headers={"authorization": f"Bearer {token}"})
        refused = httpx.get(base + "/reports", headers={"authorization": f"Bearer {token}"})
    assert ok.json() == {"client_id": "test-client"}
    assert refused.status_code == 403
    assert 'scope="admin reports.read"' in refused.headers["www-authenticate"]


@websocket("/ws", guards=[requires("admin")])
async def admin_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_json({"client_id": get_token(socket).client_id})  # type: ignore[union-attr]
    await socket.close()


def test_litestar_websocket_refusal_closes_1008(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    app = Litestar([admin_socket], plugins=[BearerAuthPlugin(server)], logging_config=None)
    with TestClient(app) as client:
        admin = {"authorization": f"Bearer {local_issuer.mint(scope='admin')}"}
        with client.websocket_connect("/ws", headers=admin) as socket:
            assert socket.receive_json() == {"client_id": "test-client"}
        reader = {"authorization": f"Bearer {local_issuer.mint(scope='orders.read')}"}
        for headers in (reader, {}):  # refused by the guard, then by the middleware
            with (
                pytest.raises(WebSocketDisconnect) as closed,
                client.websocket_connect("/ws", headers=headers) as socket,
            ):
                socket.receive_json()
            assert closed.value.code == 1008
        client.blocking_portal.call(server.aclose)


def test_litestar_guard_without_the_plugin_says_so() -> None:
    from litestar.connection import ASGIConnection

    connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection({"type": "http"})  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="BearerAuthPlugin"):
        asyncio.run(requires("orders.read")(connection, orders))
    with pytest.raises(RuntimeError, match="BearerAuthPlugin"):
        get_token(connection)


_LATIN1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_litestar_answers_any_header_as_the_asgi_middleware(
    local_issuer: LocalIssuer, server: ResourceServer, data: st.DataObject
) -> None:
    # The oracle: the plain ASGI middleware; what it refuses the plugin refuses identically,
    # what it admits reaches the handler.
    good = "Bearer " + local_issuer.mint(scope="orders.read")
    line = st.one_of(st.just(good), _LATIN1, _LATIN1.map("Bearer ".__add__), st.just(good + "x"))
    lines = data.draw(st.lists(line, max_size=2), label="lines")
    query = data.draw(st.sampled_from(["", "access_token=x", "a=b&access_token"]), label="q")
    path = "/orders" + ("?" + query if query else "")
    plain = BearerAuthMiddleware(_ok, server, realm=REALM, resource=RESOURCE)
    expected = raw_asgi_caller(plain)(path, lines)
    answer = raw_asgi_caller(create_app(server))(path, lines)
    if expected.status == 200:
        assert (answer.status, answer.json()) == (200, {"client_id": "test-client"})
        return
    assert (answer.status, answer.body) == (expected.status, expected.body)
    for name in ("www-authenticate", "content-type", "cache-control", "retry-after"):
        assert answer.headers.get(name) == expected.headers.get(name), name


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_every_route_shares_the_plugins_guard(local_issuer: LocalIssuer) -> None:
    # Litestar builds the middleware once per route: one Guard for them all (its RFC 9728
    # document built once), the one the plugin checked the options with.
    server = ResourceServer(issuer_config(local_issuer))
    plugin = BearerAuthPlugin(server, realm=REALM, resource=RESOURCE)
    seen: list[object] = []

    @get("/a", guards=[requires("orders.read")], sync_to_thread=False)
    def a(request: Request[Any, Any, Any]) -> str:
        seen.append(request.scope["user"].guard)
        return "a"

    @get("/b", guards=[requires("orders.read")], sync_to_thread=False)
    def b(request: Request[Any, Any, Any]) -> str:
        seen.append(request.scope["user"].guard)
        return "b"

    with TestClient(Litestar([a, b], plugins=[plugin], logging_config=None)) as client:
        headers = {"authorization": "Bearer " + local_issuer.mint(scope="orders.read")}
        assert client.get("/a", headers=headers).status_code == 200
        assert client.get("/b", headers=headers).status_code == 200
    assert seen == [plugin.guard, plugin.guard]
