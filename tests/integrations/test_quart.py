"""Quart: the `BearerGuard` extension, `require()` and `current_token` with the real Quart,
through the error table (raw ASGI, as a server sees the answers: Quart's own test client adds a
default content type to an empty body when it rebuilds the response), alone or behind the ASGI
middleware, and with Quart's own test client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart
from starlette.testclient import TestClient
from werkzeug.datastructures import Headers

from bearerguard import ConfigurationError, Requirement, ResourceServer
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.integrations.quart import BearerGuard, current_token, get_token, require
from bearerguard.testing import LocalIssuer

from ..helpers import aclose_on
from .conftest import (
    REALM,
    RESOURCE,
    ROWS,
    Answer,
    Call,
    Row,
    asgi_caller,
    check_row,
    raw_asgi_caller,
)


def create_app(server: ResourceServer | None = None, **config: Any) -> Quart:
    app = Quart(__name__)
    app.config.update(config)
    BearerGuard(app, server=server, realm=REALM, resource=RESOURCE)

    @app.get("/orders")
    @require("orders.read")
    async def orders() -> dict[str, Any]:
        return {"client_id": current_token.client_id}

    @app.get("/reports")
    @require(any_of=["reports.read", "admin"])
    async def reports() -> dict[str, Any]:
        return {"reports": []}

    @app.get("/maybe")
    @require("orders.read", optional=True)
    async def maybe() -> dict[str, Any]:
        token = get_token()
        return {"client_id": token.client_id if token else None}

    return app


@contextmanager
def quart_caller(app: Quart, server: ResourceServer) -> Iterator[Call]:
    """Quart's test client, on one event loop for the whole test."""

    async def call(path: str, authorization: list[str]) -> Answer:
        client = app.test_client()
        headers = Headers([("authorization", value) for value in authorization])
        response = await client.get(path, headers=headers)
        body = await response.get_data(as_text=False)
        return Answer(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, body
        )

    with start_blocking_portal() as portal:
        yield lambda path, authorization: portal.call(call, path, authorization)
        portal.call(server.aclose)


@pytest.mark.parametrize("wrapped", [False, True], ids=["alone", "behind-middleware"])
@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_quart_answers_the_error_table(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row, wrapped: bool
) -> None:
    app = create_app(server)
    if wrapped:  # the middleware verifies; require() takes its token and its guard
        options: Any = {"realm": REALM, "resource": RESOURCE, "optional": True}
        wrapped_app: Any = BearerAuthMiddleware(cast(Any, app.asgi_app), server, **options)
        app.asgi_app = wrapped_app  # type: ignore[method-assign]
    with TestClient(cast(Any, app)) as client:
        answer = check_row(row, local_issuer, asgi_caller(client))
        aclose_on(client, server)
    if row.name == "ok":
        assert answer.json() == {"client_id": "test-client"}


def test_quart_refusal_raised_in_a_view_is_its_rfc6750_answer(
    local_issuer: LocalIssuer, server: ResourceServer, caplog: pytest.LogCaptureFixture
) -> None:
    # `Requirement.check()` inside the view: the extension's error handler answers 403, not 500.
    app = create_app(server)

    @app.get("/checked")
    @require("orders.read")
    async def checked() -> dict[str, Any]:
        Requirement.of("admin").check(current_token)
        return {"admin": True}

    with quart_caller(app, server) as call, caplog.at_level(logging.INFO, "bearerguard"):
        answer = call("/checked", [f"Bearer {local_issuer.mint(scope='orders.read')}"])
    assert answer.status == 403
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert 'scope="admin"' in answer.headers["www-authenticate"]
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert line.startswith("refused: SCOPE")  # logged, as the guard logs every refusal


def test_quart_get_token_behind_the_middleware_without_require(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    app = create_app(server)

    @app.get("/plain")
    async def plain() -> dict[str, Any]:
        token = get_token()
        return {"client_id": token.client_id if token else None}

    options: Any = {"realm": REALM, "resource": RESOURCE}
    wrapped: Any = BearerAuthMiddleware(cast(Any, app.asgi_app), server, **options)
    app.asgi_app = wrapped  # type: ignore[method-assign]
    with quart_caller(app, server) as call:
        answer = call("/plain", [f"Bearer {local_issuer.mint()}"])
    assert answer.json() == {"client_id": "test-client"}


def test_quart_optional_requirement(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    with quart_caller(create_app(server), server) as call:
        assert call("/maybe", []).json() == {"client_id": None}
        token = local_issuer.mint(scope="orders.read")
        assert call("/maybe", [f"Bearer {token}"]).json() == {"client_id": "test-client"}
        assert call("/maybe", [f"Bearer {local_issuer.mint()}"]).status == 403


def test_quart_config_builds_the_server_and_serves_rfc9728(local_issuer: LocalIssuer) -> None:
    app = create_app(
        BEARERGUARD_ISSUER=local_issuer.issuer, BEARERGUARD_AUDIENCE=[local_issuer.audience]
    )
    guard = app.extensions["bearerguard"]
    token = local_issuer.mint(scope="orders.read")
    with quart_caller(app, guard.server) as call:
        assert call("/orders", [f"Bearer {token}"]).json() == {"client_id": "test-client"}
        document = call("/.well-known/oauth-protected-resource/v1", []).json()
    assert document["scopes_supported"] == ["admin", "orders.read", "reports.read"]
    assert document["authorization_servers"] == [local_issuer.issuer]


def test_quart_bad_config_fails_at_start_up(server: ResourceServer) -> None:
    with pytest.raises(ConfigurationError, match="BEARERGUARD_ISSUER is required"):
        create_app(BEARERGUARD_AUDIENCE="api://x")
    with pytest.raises(ConfigurationError, match="not both"):
        create_app(server, BEARERGUARD_ISSUER="https://a")
    with pytest.raises(ConfigurationError, match=r"BEARERGUARD_REALMS \(did you mean"):
        create_app(server, BEARERGUARD_REALMS="x", BEARERGUARD_STRICT=True)


def test_quart_current_token_outside_require_says_so() -> None:
    app = Quart(__name__)

    async def run() -> None:
        async with app.test_request_context("/"):
            assert get_token() is None
            with pytest.raises(RuntimeError, match="require"):
                _ = current_token.client_id

    import asyncio

    asyncio.run(run())


_LATIN1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_quart_answers_any_header_as_the_asgi_middleware(
    local_issuer: LocalIssuer, server: ResourceServer, data: st.DataObject
) -> None:
    # Alone, require() reads the credentials from the ASGI scope itself. The oracle: the plain
    # ASGI middleware; what it refuses Quart refuses identically, what it admits reaches the view.
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
