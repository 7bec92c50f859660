"""Django: the `settings.MIDDLEWARE` class and `require()` on function, method and class-based
views, sync and async, under WSGI and ASGI, and behind the WSGI or ASGI middleware; through the
error table, Django's own test clients, and uvicorn over real HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import AsyncClient, Client, RequestFactory, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bearerguard import ConfigurationError, ResourceServer
from bearerguard._guard import GuardOptions
from bearerguard.asgi import BearerAuthMiddleware as ASGIMiddleware
from bearerguard.integrations.django import BearerAuthMiddleware, configured_guard
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from ..helpers import aclose_on
from . import django_project
from .conftest import (
    REALM,
    RESOURCE,
    ROWS,
    Call,
    Row,
    asgi_caller,
    check_row,
    raw_asgi_caller,
    wsgi_caller,
)
from .mcp_support import free_port, serve
from .test_middleware import lifespan

OPTIONS = {"REALM": REALM, "RESOURCE": RESOURCE}
# The WSGI or ASGI middleware around the application lets tokenless requests reach the views.
WRAPPED: GuardOptions = {"realm": REALM, "resource": RESOURCE, "optional": True}


@contextmanager
def configured(server: ResourceServer, **settings: Any) -> Iterator[None]:
    """bearerguard's middleware in settings.MIDDLEWARE, its server and options in BEARERGUARD."""
    bearerguard = {"SERVER": server, **OPTIONS, **settings}
    with override_settings(MIDDLEWARE=[django_project.MIDDLEWARE], BEARERGUARD=bearerguard):
        yield


def asgi_app(handler: Any, server: ResourceServer) -> Any:
    """Django's ASGI handler, with the lifespan Django does not speak (closing the server)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        await handler(scope, receive, send)

    return app


@contextmanager
def caller(
    flavour: str, server: ResourceServer, prefix: str = "", **settings: Any
) -> Iterator[Call]:
    """Requests to the project, `prefix` before each path, through the flavour's stack."""
    if flavour == "wsgi-settings":  # settings.MIDDLEWARE under WSGI
        with configured(server, **settings):
            yield _prefixed(wsgi_caller(WSGIHandler()), prefix)
    elif flavour == "asgi-settings":  # settings.MIDDLEWARE under ASGI
        with (
            configured(server, **settings),
            TestClient(asgi_app(ASGIHandler(), server)) as client,
        ):
            yield _prefixed(asgi_caller(client), prefix)
            aclose_on(client, server)
    elif flavour == "wsgi-wrapped":  # the WSGI middleware around the application
        yield _prefixed(
            wsgi_caller(BearerAuthWSGIMiddleware(WSGIHandler(), server, **WRAPPED)), prefix
        )
    else:  # the ASGI middleware around the application: a 500 before this change
        app = ASGIMiddleware(asgi_app(ASGIHandler(), server), server, **WRAPPED)
        with TestClient(app) as client:
            yield _prefixed(asgi_caller(client), prefix)
            aclose_on(client, server)


def _prefixed(call: Call, prefix: str) -> Call:
    return lambda path, authorization: call("/" + prefix + path.lstrip("/"), authorization)


FLAVOURS = ["wsgi-settings", "asgi-settings", "wsgi-wrapped", "asgi-wrapped"]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("prefix", ["", "class/", "aclass/"], ids=["function", "class", "aclass"])
@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_django_answers_the_error_table(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row, flavour: str, prefix: str
) -> None:
    # /orders is a sync view and /reports an async one; "class/" and "aclass/" are class-based
    # views, sync and async, with `require()` on the class and on a method.
    with caller(flavour, server, prefix) as call:
        answer = check_row(row, local_issuer, call)
    if row.name == "ok":
        assert answer.json() == {"client_id": "test-client"}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_django_optional_requirement(
    local_issuer: LocalIssuer, server: ResourceServer, flavour: str
) -> None:
    with caller(flavour, server, OPTIONAL="true") as call:
        assert call("/maybe", []).json() == {"client_id": None}
        token = local_issuer.mint(scope="orders.read")
        assert call("/maybe", [f"Bearer {token}"]).json() == {"client_id": "test-client"}
        assert call("/maybe", [f"Bearer {local_issuer.mint()}"]).status == 403
        assert call("/maybe", ["Bearer bad"]).status == 401
        assert call("/orders", []).status == 401  # the view's requirement refuses it


def test_django_middleware_public_paths_and_rfc9728_document(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    local_issuer.go_down("refuse")  # neither needs the issuer
    with configured(server, PUBLIC_PATHS=["/health"]):
        client = Client()
        assert client.get("/health").json() == {"ok": True}
        assert client.get("/healthz").status_code == 401
        document = client.get("/.well-known/oauth-protected-resource/v1")
    assert document["content-type"] == "application/json"
    assert document.json() == {
        "resource": RESOURCE,
        "authorization_servers": [local_issuer.issuer],
        # gathered from the views' requirements (DRF's required_scopes too; orders.write is
        # only a DRF view's), as for Starlette and Flask
        "scopes_supported": ["admin", "orders.read", "orders.write", "reports.read"],
        "bearer_methods_supported": ["header"],
    }


def test_django_test_clients_sync_and_async(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    token = local_issuer.mint(scope="orders.read")
    headers = {"Authorization": f"Bearer {token}"}
    with configured(server):
        assert Client().get("/class/orders", headers=headers).json() == {"client_id": "test-client"}
        assert Client().get("/reports", headers=headers).status_code == 403

        async def run() -> list[int]:
            client = AsyncClient()
            statuses = [(await client.get(path, headers=headers)).status_code for path in PATHS]
            await server.aclose()
            return statuses

        assert asyncio.run(run()) == [200, 403, 200, 403]


PATHS = ["/orders", "/reports", "/aclass/orders", "/aclass/reports"]


def test_django_asgi_application_over_http_with_uvicorn(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    from django.core.asgi import get_asgi_application

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # Django has none: close the server at shutdown
            assert (await receive())["type"] == "lifespan.startup"
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            await server.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await django_app(scope, receive, send)

    token = local_issuer.mint(scope="orders.read")
    with configured(server):
        django_app = get_asgi_application()
        with serve(app, free_port()) as base:
            for path in PATHS:
                answer = httpx.get(base + path, headers={"authorization": f"Bearer {token}"})
                assert answer.status_code == (403 if "reports" in path else 200), path
                if answer.status_code == 403:
                    assert answer.headers["www-authenticate"].startswith(
                        f'Bearer realm="{REALM}", error="insufficient_scope"'
                    )
            refused = httpx.get(base + "/orders")
            assert refused.status_code == 401
            assert "content-type" not in refused.headers


def test_django_settings_build_the_server(local_issuer: LocalIssuer) -> None:
    names = {
        "BEARERGUARD_ISSUER": local_issuer.issuer,
        "BEARERGUARD_AUDIENCE": [local_issuer.audience],  # a list, as from_env's text
        "BEARERGUARD_REALM": REALM,
    }
    nested = {"ISSUER": local_issuer.issuer, "AUDIENCE": local_issuer.audience, "REALM": REALM}
    token = local_issuer.mint(scope="orders.read")
    for given_settings in (names, {"BEARERGUARD": nested}):
        with override_settings(MIDDLEWARE=[django_project.MIDDLEWARE], **given_settings):
            guard = configured_guard()
            assert guard.realm == REALM
            assert [i.issuer for i in guard.server.issuers] == [local_issuer.issuer]
            response = Client().get("/orders", headers={"Authorization": f"Bearer {token}"})
            assert response.json() == {"client_id": "test-client"}
            assert configured_guard() is guard  # one per settings, shared by every request
            guard.server.close()
        assert configured_guard.cache_info().currsize == 0  # the settings changed back


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"BEARERGUARD": {"AUDIENCE": "api://x"}}, "BEARERGUARD_ISSUER is required"),
        ({"BEARERGUARD": ["ISSUER"]}, "BEARERGUARD must be a dict"),
        ({"BEARERGUARD": {"SERVER": object()}}, "SERVER is not a ResourceServer"),
        ({"BEARERGUARD": {"SERVER": "x", "ISSUER": "https://a"}}, "SERVER, or the server's"),
        ({"BEARERGUARD": {"ISSUER": "https://a"}, "BEARERGUARD_ISSUER": "x"}, "set one"),
        ({"BEARERGUARD": {"SERVER": "SRV", "OPTIONAL": "maybe"}}, "OPTIONAL: expected true"),
        ({"BEARERGUARD": {"SERVER": "SRV", "REALM": "a\nb"}}, "realm must be printable"),
        ({"BEARERGUARD": {"SERVER": "SRV", "RESOURCE": "/v1"}}, "resource must be an absolute"),
        ({"BEARERGUARD": {"ISSUER": "https://a", "AUDIENCE": {"x": 1}}}, "BEARERGUARD_AUDIENCE"),
        (
            {"BEARERGUARD": {"SERVER": "SRV", "STRICT": True, "LEEWAY_SECONDS": 5}},
            r"BEARERGUARD_LEEWAY_SECONDS \(did you mean BEARERGUARD_LEEWAY\?\)",
        ),
    ],
)
def test_django_bad_settings_fail_at_start_up(
    local_issuer: LocalIssuer, server: ResourceServer, settings: dict[str, Any], message: str
) -> None:
    bearerguard = settings.get("BEARERGUARD")
    if isinstance(bearerguard, dict) and bearerguard.get("SERVER") == "SRV":
        settings = {"BEARERGUARD": {**bearerguard, "SERVER": server}}
    with override_settings(**settings), pytest.raises(ConfigurationError, match=message):
        BearerAuthMiddleware(lambda request: None)


def test_django_unknown_setting_is_a_warning_naming_the_closest(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    values = {"ISSUER": local_issuer.issuer, "AUDIENCE": "api://x", "ALGORITHM": "RS256"}
    with override_settings(BEARERGUARD=values), caplog.at_level(logging.WARNING, "bearerguard"):
        configured_guard().server.close()
    assert [r.getMessage() for r in caplog.records] == [
        "unknown BEARERGUARD key BEARERGUARD_ALGORITHM (did you mean BEARERGUARD_ALGORITHMS?): "
        "it is not read"
    ]


def test_django_server_by_dotted_path(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    django_project.SERVER = server  # type: ignore[attr-defined]
    try:
        with override_settings(BEARERGUARD={"SERVER": "tests.integrations.django_project.SERVER"}):
            assert configured_guard().server is server
    finally:
        del django_project.SERVER  # type: ignore[attr-defined]


def test_django_without_a_middleware_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"settings\.MIDDLEWARE"):
        django_project.orders(RequestFactory().get("/orders"))


def test_django_require_checks_what_it_decorates() -> None:
    from bearerguard.integrations.django import require

    with pytest.raises(TypeError, match="not a Django View"):
        require("a")(int)
    view: Callable[..., Any] = require("a")(lambda *args: None)
    with pytest.raises(TypeError, match="HttpRequest"):
        view(object(), object())


_LATIN1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_django_middleware_answers_any_header_as_the_wsgi_middleware(
    local_issuer: LocalIssuer, server: ResourceServer, data: st.DataObject
) -> None:
    # The oracle: the plain WSGI middleware, whose answers the error table pins. Whatever the
    # Authorization lines and query, Django's middleware (under WSGI and ASGI) refuses the same
    # way, and what it admits reaches the view.
    good = "Bearer " + local_issuer.mint(scope="orders.read")
    line = st.one_of(st.just(good), _LATIN1, _LATIN1.map("Bearer ".__add__), st.just(good + "x"))
    lines = data.draw(st.lists(line, max_size=2), label="lines")
    query = data.draw(st.sampled_from(["", "access_token=x", "a=b&access_token"]), label="q")
    path = "/orders" + ("?" + query if query else "")
    plain = BearerAuthWSGIMiddleware(_ok, server, realm=REALM, resource=RESOURCE)
    expected = wsgi_caller(plain)(path, lines)
    with configured(server):
        answers = [
            wsgi_caller(WSGIHandler())(path, lines),
            raw_asgi_caller(ASGIHandler())(path, lines),
        ]
    for answer in answers:
        if expected.status == 200:
            assert (answer.status, answer.json()) == (200, {"client_id": "test-client"})
            continue
        assert answer.status == expected.status
        assert answer.headers.get("www-authenticate") == expected.headers.get("www-authenticate")
        assert answer.body == expected.body


def _ok(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "application/json")])
    return [b"{}"]


@pytest.mark.parametrize("view", ["checked", "achecked"])
def test_a_refusal_raised_in_a_view_is_its_rfc6750_answer(
    view: str, local_issuer: LocalIssuer, server: ResourceServer, caplog: pytest.LogCaptureFixture
) -> None:
    # `Requirement.check()` inside a view behind the settings middleware: 403, not a 500.
    headers = {"Authorization": f"Bearer {local_issuer.mint(scope='orders.read')}"}
    with configured(server), caplog.at_level(logging.INFO, "bearerguard"):
        response = Client().get(f"/{view}", headers=headers)
        aresponse = asyncio.run(AsyncClient().get(f"/{view}", headers=headers))
    for answer in (response, aresponse):
        assert answer.status_code == 403
        assert 'error="insufficient_scope"' in answer["WWW-Authenticate"]
        assert 'scope="admin"' in answer["WWW-Authenticate"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(lines) == 2 and all(line.startswith("refused: SCOPE") for line in lines)
