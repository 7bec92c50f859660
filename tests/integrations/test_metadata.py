"""The RFC 9728 document is built once per app and reused; a `scopes_supported` callable is asked
on every request. Served through the ASGI and the WSGI middleware, called as a server calls them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import anyio
import pytest

from bearerguard import Requirement, ResourceServer
from bearerguard._guard import Guard
from bearerguard._metadata import REQUIREMENT_ATTR
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from .conftest import RESOURCE, wsgi_environ

PATH = "/.well-known/oauth-protected-resource/v1"


def orders() -> None: ...


setattr(orders, REQUIREMENT_ATTR, Requirement.of("orders.read"))


class App:
    """An app whose routes count how often the scope walk reads them (no request reaches it)."""

    def __init__(self) -> None:
        self.walks = 0

    @property
    def routes(self) -> list[Callable[[], None]]:
        self.walks += 1
        return [orders]


def _fetcher(flavour: str, server: ResourceServer, app: App, **options: Any) -> Callable[[], bytes]:
    """GET the document through a middleware in front of `app`; the body object it sends."""
    if flavour == "wsgi":
        wsgi = BearerAuthWSGIMiddleware(app, server, resource=RESOURCE, **options)  # type: ignore[arg-type]

        def via_wsgi() -> bytes:
            started: list[str] = []
            body = wsgi(wsgi_environ("GET", PATH, ""), lambda status, *_: started.append(status))
            assert started == ["200 OK"]
            [document] = body
            return document

        return via_wsgi
    asgi = BearerAuthMiddleware(app, server, resource=RESOURCE, **options)  # type: ignore[arg-type]

    def via_asgi() -> bytes:
        sent: list[MutableMapping[str, Any]] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": PATH,
            "headers": [],
            "query_string": b"",
        }
        anyio.run(asgi, scope, _no_receive, send)
        assert sent[0]["status"] == 200
        document: bytes = sent[1]["body"]
        return document

    return via_asgi


async def _no_receive() -> dict[str, Any]:
    raise AssertionError("the document needs no request body")


def _scopes(document: bytes) -> list[str]:
    scopes: list[str] = json.loads(document)["scopes_supported"]
    return scopes


@pytest.mark.parametrize("flavour", ["asgi", "wsgi"])
def test_metadata_declared_scopes_are_walked_once_and_the_document_reused(
    server: ResourceServer, flavour: str
) -> None:
    app = App()
    fetch = _fetcher(flavour, server, app)
    first = fetch()
    assert _scopes(first) == ["orders.read"]
    assert fetch() is first  # the same bytes object: neither walked nor encoded again
    assert app.walks == 1


@pytest.mark.parametrize("flavour", ["asgi", "wsgi"])
def test_metadata_a_scopes_callable_is_asked_on_every_request(
    server: ResourceServer, flavour: str
) -> None:
    app = App()
    asked: list[int] = []

    def scopes() -> Iterable[str]:
        asked.append(1)
        return ["a", "b"][: len(asked)]  # the user's scopes change between requests

    fetch = _fetcher(flavour, server, app, scopes_supported=scopes)
    assert _scopes(fetch()) == ["a"]
    assert _scopes(fetch()) == ["a", "b"]
    assert len(asked) == 2
    assert app.walks == 0  # given scopes: the routes are not read


@pytest.mark.parametrize("flavour", ["asgi", "wsgi"])
def test_metadata_given_scopes_are_read_once_even_from_a_generator(
    server: ResourceServer, flavour: str
) -> None:
    app = App()
    fetch = _fetcher(flavour, server, app, scopes_supported=(s for s in ["b", "a"]))
    first = fetch()
    assert _scopes(first) == ["a", "b"]
    assert fetch() is first
    assert app.walks == 0


def test_metadata_each_app_object_gets_its_own_document(server: ResourceServer) -> None:
    # One guard asked for two apps (a test building a second app, a sub-app mounted twice):
    # each is walked for its own routes, never served another's document.
    guard = Guard(server, resource=RESOURCE)
    first, second = App(), App()
    assert _scopes(guard.metadata_document(first)) == ["orders.read"]
    assert _scopes(guard.metadata_document(object())) == []
    assert _scopes(guard.metadata_document(second)) == ["orders.read"]
    assert (first.walks, second.walks) == (1, 1)
