"""Per-route DPoP: `require(..., dpop="required")` on a server accepting both schemes refuses a
token that is not DPoP-bound with a 401 and the DPoP challenge (RFC 9449 §7.1), in every helper
that builds a `Requirement` and in the policy table; FastAPI's document names the DPoP scheme."""

import logging
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Security
from flask import Flask
from litestar import Litestar, get
from quart import Quart
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client

from bearerguard import (
    AccessToken,
    ConfigurationError,
    DPoPPolicy,
    PolicyTable,
    Requirement,
    ResourceServer,
    Rule,
)
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.integrations import flask as flask_helpers
from bearerguard.integrations import litestar as litestar_helpers
from bearerguard.integrations import quart as quart_helpers
from bearerguard.integrations import starlette as starlette_helpers
from bearerguard.integrations.fastapi import DPOP_SCHEME, BearerAuth
from bearerguard.testing import DPoPKey, LocalIssuer

from ..helpers import aclose_on

ALGS = " ".join(DPoPPolicy().algorithms)
UNBOUND = (
    'DPoP error="invalid_token", error_description="The access token is not bound to a DPoP '
    f'key.", algs="{ALGS}"'
)
DPOP_ONLY = f'DPoP algs="{ALGS}"'  # no credentials on a DPoP-only route: one challenge


def fastapi_app(auth: BearerAuth) -> FastAPI:
    app = FastAPI()
    auth.install(app)

    @app.get("/pay")
    async def pay(token: Annotated[AccessToken, auth.requires("pay", dpop="required")]) -> Any:
        return {"client": token.client_id}

    @app.get("/read")
    async def read(token: Annotated[AccessToken, Security(auth, scopes=["pay"])]) -> Any:
        return {"client": token.client_id}

    return app


def starlette_app(server: ResourceServer) -> Starlette:
    @starlette_helpers.requires("pay", dpop="required")
    async def pay(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @starlette_helpers.requires("pay")
    async def read(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [Route("/pay", pay), Route("/read", read)]
    return Starlette(routes=routes, middleware=[Middleware(BearerAuthMiddleware, server=server)])


def policy_app(server: ResourceServer) -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    table = PolicyTable(
        [
            Rule("/pay", Requirement.of("pay", dpop="required")),
            Rule("/read", Requirement.of("pay")),
        ]
    )
    middleware = Middleware(BearerAuthMiddleware, server=server, policy=table)
    routes = [Route("/pay", endpoint), Route("/read", endpoint)]
    return Starlette(routes=routes, middleware=[middleware])


def quart_app(server: ResourceServer) -> Quart:
    app = Quart(__name__)
    quart_helpers.BearerGuard(app, server=server)

    @app.get("/pay")
    @quart_helpers.require("pay", dpop="required")
    async def pay() -> Any:
        return {"ok": True}

    @app.get("/read")
    @quart_helpers.require("pay")
    async def read() -> Any:
        return {"ok": True}

    return app


def litestar_app(server: ResourceServer) -> Litestar:
    @get("/pay", guards=[litestar_helpers.requires("pay", dpop="required")])
    async def pay() -> dict[str, bool]:
        return {"ok": True}

    @get("/read", guards=[litestar_helpers.requires("pay")])
    async def read() -> dict[str, bool]:
        return {"ok": True}

    plugin = litestar_helpers.BearerAuthPlugin(server)
    return Litestar([pay, read], plugins=[plugin], logging_config=None)


def flask_app(server: ResourceServer) -> Flask:
    app = Flask(__name__)
    flask_helpers.BearerGuard(app, server=server)

    @app.get("/pay")
    @flask_helpers.require("pay", dpop="required")
    def pay() -> Any:
        return {"ok": True}

    @app.get("/read")
    @flask_helpers.require("pay")
    def read() -> Any:
        return {"ok": True}

    return app


def cases(issuer: LocalIssuer, base: str) -> list[tuple[str, dict[str, str], int, str | None]]:
    """(path, headers, status, challenge prefix) for a DPoP-only route and a plain one."""
    key = DPoPKey("ES256")
    bound = issuer.mint(dpop_jkt=key.jkt, scope="pay")
    bearer, narrow = issuer.mint(scope="pay"), issuer.mint(scope="other")
    bound_narrow = issuer.mint(dpop_jkt=key.jkt, scope="other")
    bound_expired = issuer.mint(dpop_jkt=key.jkt, scope="pay", expires_in=-120)

    def dpop(path: str, token: str = bound) -> dict[str, str]:
        return {"authorization": f"DPoP {token}", "dpop": key.proof("GET", base + path, token)}

    # A DPoP request refused for its token or its scopes is answered in the DPoP scheme.
    dpop_scope = 'DPoP error="insufficient_scope", error_description="The access token'
    return [
        ("/pay", dpop("/pay", bound_narrow), 403, dpop_scope),
        ("/read", dpop("/read", bound_expired), 401, 'DPoP error="invalid_token"'),
        ("/pay", dpop("/pay"), 200, None),  # the key holder
        ("/pay", {"authorization": f"Bearer {bearer}"}, 401, UNBOUND),  # scopes, no binding
        ("/pay", {"authorization": f"Bearer {narrow}"}, 403, 'Bearer error="insufficient_scope"'),
        ("/pay", {}, 401, DPOP_ONLY),
        ("/read", {"authorization": f"Bearer {bearer}"}, 200, None),  # both schemes there
        ("/read", dpop("/read"), 200, None),
        ("/read", {}, 401, f'Bearer, DPoP algs="{ALGS}"'),
    ]


def check(answers: list[tuple[int, str | None]], expected: list[Any]) -> None:
    for (status, challenge), (path, _, want_status, want) in zip(answers, expected, strict=True):
        assert status == want_status, (path, status, challenge)
        if want is None:
            assert challenge is None
        else:
            assert challenge is not None and challenge.startswith(want), (path, challenge)
            if want == DPOP_ONLY:
                assert challenge == want  # DPoP alone: a bearer token cannot meet the route


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused: ")]


@pytest.mark.parametrize("kind", ["fastapi", "starlette", "policy", "quart", "litestar"])
def test_asgi_routes_requiring_dpop(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    server = ResourceServer(local_issuer.issuer_config(), dpop="allowed")
    builders: dict[str, Callable[[ResourceServer], Any]] = {
        "fastapi": lambda s: fastapi_app(BearerAuth(s)),
        "starlette": starlette_app,
        "policy": policy_app,
        "quart": quart_app,
        "litestar": litestar_app,
    }
    app = builders[kind](server)
    expected = cases(local_issuer, "http://testserver")
    if kind in ("starlette", "litestar"):  # a middleware in front refuses before the route
        expected[5] = (*expected[5][:3], f'Bearer, DPoP algs="{ALGS}"')
    with caplog.at_level(logging.INFO, logger="bearerguard"), TestClient(app) as client:
        answers = [
            (a.status_code, a.headers.get("www-authenticate"))
            for a in (client.get(path, headers=headers) for path, headers, *_ in expected)
        ]
        aclose_on(client, server)
    check(answers, expected)
    assert sum(m.startswith("refused: DPOP_UNBOUND") for m in refusals(caplog)) == 1


def test_flask_route_requiring_dpop(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    expected = cases(local_issuer, "http://localhost")
    with (
        caplog.at_level(logging.INFO, logger="bearerguard"),
        ResourceServer(local_issuer.issuer_config(), dpop="allowed") as server,
    ):
        client = flask_app(server).test_client()
        answers = [
            (a.status_code, a.headers.get("www-authenticate"))
            for a in (client.get(path, headers=headers) for path, headers, *_ in expected)
        ]
    check(answers, expected)
    assert sum(m.startswith("refused: DPOP_UNBOUND") for m in refusals(caplog)) == 1


def test_a_route_requiring_dpop_on_a_server_without_it_is_refused_at_construction(
    local_issuer: LocalIssuer,
) -> None:
    with ResourceServer(local_issuer.issuer_config()) as server:
        with pytest.raises(ConfigurationError, match='dpop="off"'):
            BearerAuth(server).requires("pay", dpop="required")
        table = PolicyTable([Rule("/pay", Requirement.of("pay") | Requirement.of(dpop="required"))])
        with pytest.raises(ConfigurationError, match='dpop="off"'):
            BearerAuthMiddleware(starlette_app(server), server, policy=table)


def test_a_route_requiring_dpop_on_a_server_without_it_refuses_every_token(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    # Flask's require() knows no server when it decorates: the request is refused instead. A
    # token carrying cnf.jkt is refused before any route, as a DPoP-off server refuses it.
    key = DPoPKey("ES256")
    with (
        caplog.at_level(logging.INFO, logger="bearerguard"),
        ResourceServer(local_issuer.issuer_config()) as server,
    ):
        client = flask_app(server).test_client()
        bearer = {"authorization": f"Bearer {local_issuer.mint(scope='pay')}"}
        answer = client.get("/pay", headers=bearer)
        assert answer.status_code == 401
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token"') and "needs a DPoP" in challenge
        assert client.get("/read", headers=bearer).status_code == 200
        bound = {"authorization": f"Bearer {local_issuer.mint(scope='pay', dpop_jkt=key.jkt)}"}
        for path in ("/pay", "/read"):
            answer = client.get(path, headers=bound)
            assert answer.status_code == 401
            assert "bound to a DPoP key" in answer.headers["www-authenticate"]
    messages = refusals(caplog)
    assert sum(m.startswith("refused: DPOP_OFF") for m in messages) == 1
    assert sum(m.startswith("refused: DPOP_DOWNGRADE") for m in messages) == 2


@pytest.mark.parametrize("value", ["off", "allowed", "yes", True])
def test_a_route_can_only_require_dpop(value: Any) -> None:
    with pytest.raises(ConfigurationError, match='dpop="required"'):
        Requirement.of("pay", dpop=value)


@pytest.mark.parametrize("mode", ["off", "allowed", "required"])
def test_fastapi_document_names_the_dpop_scheme(local_issuer: LocalIssuer, mode: str) -> None:
    with ResourceServer(local_issuer.issuer_config(), dpop=mode) as server:  # type: ignore[arg-type]
        auth = BearerAuth(server, token_url="https://as.example/token")
        app = FastAPI()

        @app.get("/read")
        async def read(token: Annotated[AccessToken, Security(auth, scopes=["r"])]) -> Any: ...

        @app.get("/write")
        async def write(token: Annotated[AccessToken, auth.requires("w")]) -> Any: ...

        if mode != "off":

            @app.get("/pay")
            async def pay(
                token: Annotated[AccessToken, auth.requires("p", dpop="required")],
            ) -> Any: ...

        document = app.openapi()
    schemes = document["components"]["securitySchemes"]
    security = {path: item["get"]["security"] for path, item in document["paths"].items()}
    oauth2 = "OAuth2ClientCredentials"
    if mode == "off":
        assert set(schemes) == {oauth2}
        assert security == {"/read": [{oauth2: ["r"]}], "/write": [{oauth2: ["w"]}]}
        return
    assert schemes[DPOP_SCHEME]["type"] == "http" and schemes[DPOP_SCHEME]["scheme"] == "DPoP"
    if mode == "allowed":  # either scheme; DPoP alone where the route needs it
        assert security == {
            "/read": [{oauth2: ["r"]}, {DPOP_SCHEME: ["r"]}],
            "/write": [{oauth2: ["w"]}, {DPOP_SCHEME: ["w"]}],
            "/pay": [{DPOP_SCHEME: ["p"]}],
        }
    else:  # the server accepts DPoP alone: no flow whose bearer tokens it refuses
        assert set(schemes) == {DPOP_SCHEME}
        assert security == {
            "/read": [{DPOP_SCHEME: ["r"]}],
            "/write": [{DPOP_SCHEME: ["w"]}],
            "/pay": [{DPOP_SCHEME: ["p"]}],
        }


def test_fastapi_security_with_both_schemes_still_verifies(local_issuer: LocalIssuer) -> None:
    # `Security(auth, ...)` of a server accepting both schemes carries the DPoP declaration as
    # a sub-dependency: the route still judges the request.
    server = ResourceServer(local_issuer.issuer_config(), dpop="allowed")
    with TestClient(fastapi_app(BearerAuth(server))) as client:
        assert client.get("/read").status_code == 401
        bad = {"authorization": f"Bearer {local_issuer.mint(scope='other')}"}
        assert client.get("/read", headers=bad).status_code == 403
        aclose_on(client, server)


def test_wsgi_policy_route_requiring_dpop(local_issuer: LocalIssuer) -> None:
    from bearerguard.wsgi import BearerAuthWSGIMiddleware

    def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    table = PolicyTable(
        [
            Rule("/pay", Requirement.of("pay", dpop="required")),
            Rule("/read", Requirement.of("pay")),
        ]
    )
    with ResourceServer(local_issuer.issuer_config(), dpop="allowed") as server:
        client = Client(BearerAuthWSGIMiddleware(ok, server, policy=table))
        expected = cases(local_issuer, "http://localhost")
        answers = [
            (a.status_code, a.headers.get("www-authenticate"))
            for a in (client.get(path, headers=headers) for path, headers, *_ in expected)
        ]
    check(answers, expected)
