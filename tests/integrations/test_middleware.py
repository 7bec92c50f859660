"""ASGI and WSGI middleware: one table, both protocols, identical answers; websockets; RFC 9728."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import pytest
from starlette.testclient import TestClient

from bearerguard import BearerError, ConfigurationError, Issuer, Requirement, ResourceServer
from bearerguard._challenge import Challenge
from bearerguard._guard import GUARD_KEY, Guard
from bearerguard.asgi import SCOPE_KEY, BearerAuthMiddleware, guard_of, refuse
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware, respond

from ..helpers import aclose_on
from .conftest import (
    METADATA_URL,
    REALM,
    RESOURCE,
    ROWS,
    Answer,
    Row,
    asgi_caller,
    check_row,
    wsgi_caller,
)

REQUIREMENTS = {
    "/orders": Requirement.of("orders.read"),
    "/reports": Requirement.of(any_of=["reports.read", "admin"]),
}
OK = Challenge(200, (("content-type", "application/json"),), b'{"ok": true}')


def _answer(store: Any, path: str) -> Challenge:
    guard = guard_of(store) if "user" in store else store[GUARD_KEY]  # ASGI, WSGI
    assert isinstance(guard, Guard)
    try:
        guard.check(REQUIREMENTS[path], store[SCOPE_KEY])
    except BearerError as exc:
        return guard.render(exc)
    return OK


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await refuse(scope, send, _answer(scope, scope["path"]))


async def lifespan(receive: Any, send: Any) -> None:
    for step in ("startup", "shutdown"):
        assert (await receive())["type"] == f"lifespan.{step}"
        await send({"type": f"lifespan.{step}.complete"})


def wsgi_app(environ: Any, start_response: Any) -> Iterable[bytes]:
    return respond(start_response, _answer(environ, environ["PATH_INFO"]))


def _server(issuer: LocalIssuer) -> ResourceServer:
    return ResourceServer(Issuer(issuer=issuer.issuer, audience=issuer.audience))


OPTIONS: dict[str, Any] = {"realm": REALM, "resource": RESOURCE, "public_paths": ["/health"]}


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_middleware_asgi_and_wsgi_answer_identically(local_issuer: LocalIssuer, row: Row) -> None:
    authorization = row.authorization(local_issuer)
    fixed = Row(**{**row.__dict__, "authorization": lambda _: authorization})
    asgi_server, wsgi_server = _server(local_issuer), _server(local_issuer)
    asgi = BearerAuthMiddleware(asgi_app, asgi_server, **OPTIONS)
    wsgi = BearerAuthWSGIMiddleware(wsgi_app, wsgi_server, **OPTIONS)
    with TestClient(asgi) as client:
        via_asgi = check_row(fixed, local_issuer, asgi_caller(client))
        aclose_on(client, asgi_server)
    via_wsgi = check_row(fixed, local_issuer, wsgi_caller(wsgi))
    wsgi_server.close()
    assert via_asgi == Answer(via_wsgi.status, via_asgi.headers, via_wsgi.body)
    assert via_asgi.headers.get("www-authenticate") == via_wsgi.headers.get("www-authenticate")


def test_middleware_public_paths_skip_authentication(local_issuer: LocalIssuer) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        seen.append(scope["path"])
        assert SCOPE_KEY not in scope
        await refuse(scope, send, OK)

    server = _server(local_issuer)
    local_issuer.go_down("refuse")  # a health check must not depend on the issuer
    with TestClient(BearerAuthMiddleware(app, server, public_paths=["/health", "/docs/"])) as c:
        assert c.get("/health", headers={"authorization": "Bearer garbage"}).status_code == 200
        assert c.get("/docs/oauth2-redirect").status_code == 200
        assert c.get("/healthz").status_code == 401  # a prefix only counts at a "/"
    assert seen == ["/health", "/docs/oauth2-redirect"]


@pytest.mark.parametrize("middleware", [BearerAuthMiddleware, BearerAuthWSGIMiddleware])
@pytest.mark.parametrize(
    "public_paths", ["/health", b"/health", bytearray(b"/health"), ["/health", None], [""], ["x"]]
)
def test_middleware_refuses_public_paths_that_are_not_a_list_of_paths(
    local_issuer: LocalIssuer, middleware: Any, public_paths: Any
) -> None:
    # A bare "/health" used to be read as its characters, "/" among them: every path public,
    # /orders answered without a token. "" became "/" the same way.
    server = _server(local_issuer)
    with pytest.raises(ConfigurationError, match="public_paths") as raised:
        middleware(asgi_app, server, public_paths=public_paths)
    assert raised.value.field == "public_paths"


def test_middleware_with_a_bare_string_public_path_lets_no_request_through(
    local_issuer: LocalIssuer,
) -> None:
    # The bypass end to end: whatever happens to the configuration, /orders without a token
    # is never answered by the app.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        await refuse(scope, send, OK)

    server = _server(local_issuer)
    try:
        guarded = BearerAuthMiddleware(app, server, public_paths="/health")
    except ConfigurationError:
        return
    with TestClient(guarded) as client:  # reached only without the check
        assert client.get("/orders").status_code == 401


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/health/../admin", "/health/./x", "/health//x", "/health/\x00"])
async def test_middleware_public_paths_only_count_in_normal_form(
    local_issuer: LocalIssuer, path: str
) -> None:
    # Below a public path as text, not as a router may read it: it must authenticate. (Sent as
    # the server gives it: an HTTP client would remove the dot segments before sending.)
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"{path} reached the app without a token")

    server = _server(local_issuer)
    scope = {"type": "http", "path": path, "query_string": b"", "headers": []}
    await BearerAuthMiddleware(app, server, public_paths=["/health"])(scope, _no_receive, send)
    assert sent[0]["status"] == 401

    def wsgi_app(environ: Any, start_response: Any) -> Any:
        raise AssertionError(f"{path} reached the WSGI app without a token")

    statuses: list[str] = []
    wsgi = BearerAuthWSGIMiddleware(wsgi_app, server, public_paths=["/health"])
    wsgi({"PATH_INFO": path, "QUERY_STRING": ""}, lambda status, headers: statuses.append(status))
    assert statuses == ["401 Unauthorized"]
    await server.aclose()


@pytest.mark.anyio
async def test_middleware_lifespan_passes_through(local_issuer: LocalIssuer) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await BearerAuthMiddleware(app, _server(local_issuer))(
        {"type": "lifespan"}, _no_receive, _no_send
    )
    assert seen == ["lifespan"]


async def _no_receive() -> Any:
    raise AssertionError("not expected")


async def _no_send(message: Any) -> None:
    raise AssertionError("not expected")


async def _ignore(message: Any) -> None:
    return None


def _websocket(authorization: str | None, extensions: dict[str, Any]) -> dict[str, Any]:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return {
        "type": "websocket",
        "path": "/ws",
        "query_string": b"",
        "headers": headers,
        "extensions": extensions,
    }


async def _run_websocket(server: ResourceServer, scope: dict[str, Any]) -> list[Any]:
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept"})

    async def send(message: Any) -> None:
        sent.append(message)

    await BearerAuthMiddleware(app, server, realm=REALM)(scope, _no_receive, send)
    await server.aclose()
    return sent


@pytest.mark.anyio
async def test_middleware_websocket_refusal_closes_1008_before_accept(
    local_issuer: LocalIssuer,
) -> None:
    sent = await _run_websocket(_server(local_issuer), _websocket(None, {}))
    assert sent == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.anyio
async def test_middleware_websocket_refusal_is_a_real_401_with_the_extension(
    local_issuer: LocalIssuer,
) -> None:
    scope = _websocket("Bearer not-a-jwt", {"websocket.http.response": {}})
    sent = await _run_websocket(_server(local_issuer), scope)
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 401
    assert (
        b"www-authenticate",
        (
            b'Bearer realm="orders-api", error="invalid_token", '
            b'error_description="The access token is malformed."'
        ),
    ) in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"] == "invalid_token"


@pytest.mark.anyio
async def test_middleware_websocket_with_a_valid_token_is_accepted(
    local_issuer: LocalIssuer,
) -> None:
    scope = _websocket("Bearer " + local_issuer.mint(), {})
    sent = await _run_websocket(_server(local_issuer), scope)
    assert sent == [{"type": "websocket.accept"}]
    assert scope[SCOPE_KEY].client_id == "test-client"
    assert scope["user"].is_authenticated


def test_middleware_optional_lets_tokenless_requests_in_but_not_bad_tokens(
    local_issuer: LocalIssuer,
) -> None:
    users: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        users.append((scope[SCOPE_KEY], scope["user"].is_authenticated, scope["auth"].scopes))
        await refuse(scope, send, OK)

    server = _server(local_issuer)
    with TestClient(BearerAuthMiddleware(app, server, optional=True)) as client:
        assert client.get("/anything").status_code == 200
        assert client.get("/x", headers={"authorization": "Bearer bad"}).status_code == 401
        aclose_on(client, server)
    assert users == [(None, False, [])]


@pytest.mark.parametrize("flavour", ["asgi", "wsgi"])
@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (RESOURCE, "/.well-known/oauth-protected-resource/v1"),
        (RESOURCE, "/.well-known/oauth-protected-resource"),
        ("https://api.example.test", "/.well-known/oauth-protected-resource"),
    ],
)
def test_middleware_serves_rfc9728_metadata(
    local_issuer: LocalIssuer, flavour: str, resource: str, path: str
) -> None:
    server = _server(local_issuer)
    options: dict[str, Any] = {"resource": resource, "scopes_supported": ["b", "a", "b"]}
    if flavour == "asgi":
        with TestClient(BearerAuthMiddleware(asgi_app, server, **options)) as client:
            answer = asgi_caller(client)(path, [])
    else:
        answer = wsgi_caller(BearerAuthWSGIMiddleware(wsgi_app, server, **options))(path, [])
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "resource": resource,
        "authorization_servers": [local_issuer.issuer],
        "scopes_supported": ["a", "b"],
        "bearer_methods_supported": ["header"],
    }
    assert METADATA_URL.endswith("/v1")


def test_middleware_logs_refusals_once_without_the_token(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server(local_issuer)
    token = local_issuer.mint(scope="orders.write")
    call = wsgi_caller(BearerAuthWSGIMiddleware(wsgi_app, server))
    with caplog.at_level(logging.INFO, logger="bearerguard"):
        call("/orders", ["Bearer " + token])
        call("/orders", ["Bearer a", "Bearer b"])
        call("/orders?access_token=" + token, [])
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "bearerguard"]
    assert messages == [
        (
            logging.WARNING,
            f"refused: SCOPE iss='{local_issuer.issuer}' client_id='test-client' "
            "required='orders.read'",
        ),
        (logging.WARNING, "refused: MULTIPLE_CREDENTIALS"),  # no token was read
        (logging.WARNING, "refused: TOKEN_IN_URL"),
    ]
    assert not any(token in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("path", "lines", "reason"),
    [
        ("/orders?access_token={}", ["Bearer {}"], "TOKEN_IN_URL"),
        ("/orders", ["Bearer {}", "Bearer {}"], "MULTIPLE_CREDENTIALS"),
        ("/orders", ["Bearer {}", "Basic dTpw"], "MULTIPLE_CREDENTIALS"),
        ("/orders", ["Bearer\t{}"], "MALFORMED_HEADER"),
        ("/orders", ["Bearer {} junk"], "MALFORMED_HEADER"),
    ],
)
def test_middleware_a_cached_token_is_still_refused_in_a_bad_request(
    local_issuer: LocalIssuer,
    caplog: pytest.LogCaptureFixture,
    path: str,
    lines: list[str],
    reason: str,
) -> None:
    # The middlewares answer a verified-token cache hit on a short path: it must not skip the
    # request checks (one credential, none in the URL, a well-formed header).
    token = local_issuer.mint(scope="orders.read")
    asgi_server, wsgi_server = _server(local_issuer), _server(local_issuer)
    headers = [line.format(token) for line in lines]
    with TestClient(BearerAuthMiddleware(asgi_app, asgi_server)) as client:
        via_asgi = asgi_caller(client)
        assert via_asgi("/orders", ["Bearer " + token]).status == 200  # now cached
        with caplog.at_level(logging.WARNING, logger="bearerguard"):
            assert via_asgi(path.format(token), headers).status == 400
        aclose_on(client, asgi_server)
    via_wsgi = wsgi_caller(BearerAuthWSGIMiddleware(wsgi_app, wsgi_server))
    assert via_wsgi("/orders", ["Bearer " + token]).status == 200
    with caplog.at_level(logging.WARNING, logger="bearerguard"):
        assert via_wsgi(path.format(token), headers).status == 400
    wsgi_server.close()
    assert [r.getMessage().split()[1] for r in caplog.records] == [reason, reason]


@pytest.mark.anyio
async def test_middleware_leaves_one_token_user_as_auth_and_user(
    local_issuer: LocalIssuer,
) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope))
        await refuse(scope, send, OK)

    server = _server(local_issuer)
    middleware = BearerAuthMiddleware(app, server)
    token = local_issuer.mint(scope="orders.write orders.read admin")
    for _ in range(2):  # a miss, then a cache hit: the same contract
        headers = [(b"authorization", f"Bearer {token}".encode())]
        scope = {"type": "http", "path": "/x", "query_string": b"", "headers": headers}
        await middleware(scope, _no_receive, _ignore)
    for scope in seen:
        user = scope["user"]
        assert scope["auth"] is user  # one object, duck-typed as both
        assert user.token is scope[SCOPE_KEY]
        assert user.scopes == ["admin", "orders.read", "orders.write"]  # sorted, a list
        assert user.is_authenticated and user.display_name == "test-client"
        assert guard_of(scope) is middleware.guard
        assert GUARD_KEY not in scope  # the guard rides on the user: no extra scope key
        assert local_issuer.mint() not in repr(user)
    assert seen[0]["user"] is not seen[1]["user"]  # never shared between requests
    assert guard_of({"user": object()}) is None
    await server.aclose()
