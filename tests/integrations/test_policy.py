"""The policy table, enforced by the ASGI and WSGI middleware in front of real Starlette and
Flask apps: requests are built the way servers build them (uvicorn percent-decodes `path` and
keeps `raw_path`; a WSGI server decodes `PATH_INFO` to latin-1 and may keep `RAW_URI`), so that
the encoded-path tricks reach the middleware exactly as they would in production.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bearerguard import (
    ConfigurationError,
    InvalidRequestError,
    PolicyTable,
    Requirement,
    ResourceServer,
    Rule,
    ScopeGrants,
)
from bearerguard._urls import normal_path
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from .conftest import RESOURCE, Answer, wsgi_environ

POLICY = PolicyTable(
    [
        Rule(r"/public(/.*)?", Requirement()),  # any valid token
        Rule(r"/orders", Requirement.of("orders.read"), methods=["GET"]),
        Rule(r"/orders", Requirement.of("orders.write"), methods=["POST"]),
        Rule(r"/admin(/.*)?", Requirement.of("admin")),
    ]
)
PROTECTED = {"/admin", "/admin/users", "/ADMIN"}  # handlers a non-admin token must never reach

# (method, request target as sent on the wire) -> status for a token with only `orders.read`
ATTEMPTS = [
    ("GET", "/orders", 200),
    ("GET", "/public/readme", 200),
    ("POST", "/orders", 403),  # the method's own rule, not GET's
    ("GET", "/admin", 403),
    ("HEAD", "/admin", 403),
    ("GET", "/admin/users", 403),
    ("GET", "/admin/", 403),  # trailing slash: still /admin's rule
    ("GET", "/ADMIN", 403),  # no case folding: unmatched, default deny
    ("GET", "/Admin/users", 403),
    ("GET", "/admin;x=1", 403),  # `;` parameters are path text here: unmatched, denied
    ("GET", "/orders/../admin", 400),
    ("GET", "/public/../admin", 400),
    ("GET", "/public/%2e%2e/admin", 400),
    ("GET", "/public/%2E%2E/admin/users", 400),
    ("GET", "/./admin", 400),
    ("GET", "//admin", 400),
    ("GET", "/public//admin", 400),
    ("GET", "/public/..%2Fadmin", 400),
    ("GET", "/public%2F..%2Fadmin", 400),
    ("GET", "/admin%00", 400),
    ("GET", "/public%00/../admin", 400),
    ("GET", "/metrics", 403),  # an unlisted route under the protected prefix
]


def starlette_app(reached: list[str], **options: Any) -> Starlette:
    async def endpoint(request: Request) -> PlainTextResponse:
        reached.append(request.url.path)
        return PlainTextResponse("ok")

    paths = ["/orders", "/admin", "/admin/users", "/ADMIN", "/metrics", "/public/{rest:path}"]
    routes = [Route(p, endpoint, methods=["GET", "POST"]) for p in paths]
    routes.append(Route("/{rest:path}", endpoint))  # a catch-all shows what slipped through
    return Starlette(routes=routes, middleware=[Middleware(BearerAuthMiddleware, **options)])


def flask_app(reached: list[str], **options: Any) -> Any:
    app = Flask(__name__)

    def endpoint(**_: str) -> str:
        from flask import request

        reached.append(request.path)
        return "ok"

    for i, rule in enumerate(["/orders", "/admin", "/admin/users", "/ADMIN", "/metrics"]):
        app.add_url_rule(rule, f"e{i}", endpoint, methods=["GET", "POST"])
    app.add_url_rule("/public/<path:rest>", "public", endpoint)
    app.add_url_rule("/<path:rest>", "catchall", endpoint)
    app.wsgi_app = BearerAuthWSGIMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


Send = Callable[[str, str, str | None], Answer]


def asgi_sender(app: Any) -> Send:
    """One request as uvicorn hands it over: `path` percent-decoded, `raw_path` as sent."""

    def send(method: str, target: str, token: str | None) -> Answer:
        raw, _, query = target.partition("?")
        credentials = [(b"authorization", f"Bearer {token}".encode())] if token else []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(raw),
            "raw_path": raw.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver"), *credentials],
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def collect(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(app(scope, receive, collect))
        start = sent[0]
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return Answer(start["status"], headers, body)

    return send


def wsgi_sender(app: Any, *, raw_uri: bool = True) -> Send:
    """One request as a WSGI server hands it over: `PATH_INFO` is the decoded bytes as latin-1."""

    def send(method: str, target: str, token: str | None) -> Answer:
        raw, _, query = target.partition("?")
        environ = wsgi_environ(method, unquote_to_bytes(raw).decode("latin-1"), query)
        if raw_uri:
            environ["RAW_URI"] = target  # gunicorn's name; uWSGI says REQUEST_URI
        if token:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        started: list[Any] = []
        body = b"".join(app(environ, lambda status, headers, *_: started.extend([status, headers])))
        headers = {name.lower(): value for name, value in started[1]}
        return Answer(int(started[0].split()[0]), headers, body)

    return send


@pytest.fixture(params=["starlette", "flask"])
def stack(
    request: pytest.FixtureRequest, server: ResourceServer
) -> Iterator[tuple[Send, list[str]]]:
    reached: list[str] = []
    if request.param == "starlette":
        yield asgi_sender(starlette_app(reached, server=server, policy=POLICY)), reached
    else:
        yield wsgi_sender(flask_app(reached, server=server, policy=POLICY)), reached


@pytest.mark.parametrize(("method", "target", "status"), ATTEMPTS)
def test_no_encoding_trick_reaches_a_protected_route(
    local_issuer: LocalIssuer,
    stack: tuple[Send, list[str]],
    method: str,
    target: str,
    status: int,
) -> None:
    send, reached = stack
    answer = send(method, target, local_issuer.mint(scope="orders.read"))
    assert answer.status == status, answer
    assert not PROTECTED & set(reached)
    if status == 200:
        assert reached == [target]
        return
    assert reached == []
    if status == 400:
        assert answer.json()["error_description"] == "The request path is not in normal form."
    else:  # default deny names no scope; a rule names its own
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]


@pytest.mark.parametrize("target", ["/admin", "/admin/users", "/admin/", "/public/x"])
def test_the_right_scope_reaches_the_route(
    local_issuer: LocalIssuer, stack: tuple[Send, list[str]], target: str
) -> None:
    send, reached = stack
    answer = send("GET", target, local_issuer.mint(scope="admin"))
    assert answer.status == 200  # `/admin/` is allowed by the table and reaches the catch-all
    assert reached == [target]


def test_default_deny_is_403_naming_no_scope_and_401_without_a_token(
    local_issuer: LocalIssuer, stack: tuple[Send, list[str]]
) -> None:
    send, reached = stack
    denied = send("GET", "/ADMIN", local_issuer.mint(scope="admin orders.read"))
    assert denied.status == 403
    assert "scope=" not in denied.headers["www-authenticate"]
    assert send("GET", "/ADMIN", None).status == 401
    assert reached == []


def test_a_rule_names_its_scope(local_issuer: LocalIssuer, stack: tuple[Send, list[str]]) -> None:
    send, _ = stack
    answer = send("GET", "/admin", local_issuer.mint(scope="orders.read"))
    assert 'scope="admin"' in answer.headers["www-authenticate"]


def test_wsgi_without_a_raw_uri_sees_the_router_s_decoded_path(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    # Without RAW_URI an encoded slash is a slash for the router and for the table alike.
    reached: list[str] = []
    send = wsgi_sender(flask_app(reached, server=server, policy=POLICY), raw_uri=False)
    token = local_issuer.mint(scope="orders.read")
    assert send("GET", "/public%2F..%2Fadmin", token).status == 400
    assert send("GET", "/admin%2Fusers", token).status == 403
    assert reached == []


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_cyberark_scope_grants(
    local_issuer: LocalIssuer, server: ResourceServer, kind: str
) -> None:
    policy = PolicyTable.from_scopes({"orders": [r"/orders(/.*)?"], "admin": [r".*"]})
    reached: list[str] = []
    if kind == "asgi":
        send = asgi_sender(starlette_app(reached, server=server, policy=policy))
    else:
        send = wsgi_sender(flask_app(reached, server=server, policy=policy))
    orders, admin = local_issuer.mint(scope="orders"), local_issuer.mint(scope="admin")
    assert send("GET", "/orders", orders).status == 200
    assert send("GET", "/orders", admin).status == 200  # `.*` grants every path
    denied = send("GET", "/admin", orders)
    assert denied.status == 403
    assert 'scope="admin"' in denied.headers["www-authenticate"]
    assert reached == ["/orders", "/orders"]


def test_public_paths_and_prefixes(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    policy = PolicyTable(
        [Rule("/api/orders", Requirement.of("orders.read"))],
        protect="/api",
        default=Requirement.of("api.other"),
    )
    reached: list[str] = []
    app = starlette_app(reached, server=server, policy=policy, public_paths=["/public"])
    send = asgi_sender(app)
    token = local_issuer.mint(scope="orders.read")
    assert send("GET", "/metrics", token).status == 200  # outside /api: a valid token suffices
    assert send("GET", "/public/x", None).status == 200  # public: no token needed
    assert send("GET", "/public/../admin", None).status == 400  # not public by a `..`
    other = send("GET", "/api/other", token)
    assert other.status == 403
    assert 'scope="api.other"' in other.headers["www-authenticate"]
    assert reached == ["/metrics", "/public/x"]


def test_policy_scopes_are_advertised(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    send = asgi_sender(starlette_app([], server=server, policy=POLICY, resource=RESOURCE))
    answer = send("GET", "/.well-known/oauth-protected-resource", None)
    assert json.loads(answer.body)["scopes_supported"] == ["admin", "orders.read", "orders.write"]


@pytest.mark.parametrize(
    "path", ["/a/./b", "/a/../b", "/..", "/a/..", "//", "a", "/a\x00", "/a//b"]
)
def test_paths_not_in_normal_form_are_refused(path: str) -> None:
    with pytest.raises(InvalidRequestError):
        normal_path(path)


@pytest.mark.parametrize("path", ["/", "/a/", "/a.b/c..d/.e", "/ä/ß", "/a;b=1"])
def test_paths_in_normal_form_pass(path: str) -> None:
    assert normal_path(path, path.encode("utf-8")) == path


def test_rules_match_the_whole_path_and_their_methods() -> None:
    rule = Rule(r"/orders/\d+", Requirement.of("r"), methods="get")
    assert rule.requirement_for("GET", "/orders/1") is not None
    assert rule.requirement_for("HEAD", "/orders/1") is not None  # as routers answer HEAD
    assert rule.requirement_for("GET", "/orders/1/x") is None
    assert rule.requirement_for("GET", "/x/orders/1") is None
    assert rule.requirement_for("DELETE", "/orders/1") is None
    grants = ScopeGrants({"a": ["/x.*"], "b": ["/xy"]})
    assert grants.requirement_for("GET", "/xy") == Requirement.of(any_of=["a", "b"])
    assert grants.requirement_for("GET", "/y") is None


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_scope_grants_per_method_in_one_table(
    local_issuer: LocalIssuer, server: ResourceServer, kind: str
) -> None:
    # "orders.read grants GET on /orders, orders.write grants POST on it", one mapping.
    policy = PolicyTable.from_scopes(
        {
            "orders.read": [("GET", r"/orders(/.*)?")],
            "orders.write": [(["POST", "put"], r"/orders(/.*)?")],
            "ops": [r"/metrics"],
            "admin": [r".*"],
        }
    )
    reached: list[str] = []
    if kind == "asgi":
        send = asgi_sender(starlette_app(reached, server=server, policy=policy))
    else:
        send = wsgi_sender(flask_app(reached, server=server, policy=policy))
    read, write = local_issuer.mint(scope="orders.read"), local_issuer.mint(scope="orders.write")
    admin = local_issuer.mint(scope="admin")
    assert send("GET", "/orders", read).status == 200
    assert send("HEAD", "/orders", read).status == 200  # as the router answers HEAD
    assert send("POST", "/orders", write).status == 200
    assert send("POST", "/orders", admin).status == 200
    get_denied = send("GET", "/orders", write)
    assert get_denied.status == 403
    assert 'scope="admin orders.read"' in get_denied.headers["www-authenticate"]
    post_denied = send("POST", "/orders", read)
    assert post_denied.status == 403
    assert 'scope="admin orders.write"' in post_denied.headers["www-authenticate"]
    assert send("GET", "/metrics", read).status == 403
    assert reached == ["/orders", "/orders", "/orders", "/orders"]


def test_scope_grants_methods_default_applies_to_plain_entries() -> None:
    grants = ScopeGrants({"r": ["/a"], "w": [("POST", "/a")]}, methods=["GET"])
    assert grants.requirement_for("GET", "/a") == Requirement.of(any_of=["r"])
    assert grants.requirement_for("POST", "/a") == Requirement.of(any_of=["w"])
    assert grants.requirement_for("DELETE", "/a") is None
    with pytest.raises(ConfigurationError, match="pair"):
        ScopeGrants({"r": [("GET", "/a", "extra")]})  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        ScopeGrants({"r": [("GET", "(")]})
    with pytest.raises(ConfigurationError, match="list"):
        ScopeGrants({"r": "/a"})


_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"]
_PATHS = ["/a", "/a/1", "/b", "/a/b/c", "/"]
_REGEXES = [r"/a", r"/a(/.*)?", r"/a/\d+", r".*", r"/b"]
_entries = st.one_of(
    st.sampled_from(_REGEXES),
    st.tuples(
        st.lists(st.sampled_from(_METHODS), min_size=1, max_size=3), st.sampled_from(_REGEXES)
    ),
)


@given(
    grants=st.dictionaries(
        st.sampled_from(["s1", "s2", "s3", "s4"]), st.lists(_entries, max_size=3), max_size=4
    ),
    method=st.sampled_from(_METHODS),
    path=st.sampled_from(_PATHS),
)
def test_scope_grants_match_the_oracle(
    grants: dict[str, list[Any]], method: str, path: str
) -> None:
    import re

    def grants_request(entry: Any) -> bool:
        methods, regex = entry if isinstance(entry, tuple) else (None, entry)
        if methods is not None:
            allowed = {m.upper() for m in methods}
            allowed |= {"HEAD"} if "GET" in allowed else set()
            if method not in allowed:
                return False
        return re.fullmatch(regex, path) is not None

    expected = [s for s, entries in grants.items() if any(map(grants_request, entries))]
    got = ScopeGrants(
        {s: [tuple(e) if isinstance(e, tuple) else e for e in v] for s, v in grants.items()}
    ).requirement_for(method, path)
    assert got == (Requirement.of(any_of=expected) if expected else None)
