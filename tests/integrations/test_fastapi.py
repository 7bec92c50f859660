"""FastAPI: the example app through the error table, the OpenAPI document, and the fallbacks."""

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Security
from fastapi_app import create_app
from starlette.testclient import TestClient

from bearerguard import AccessToken, ResourceServer
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.integrations.fastapi import PENDING_TOKEN_URL, BearerAuth
from bearerguard.testing import LocalIssuer, access_token

from ..helpers import aclose_on
from .conftest import RESOURCE, ROWS, Row, asgi_caller, check_row


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_fastapi_example_answers_the_error_table(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row
) -> None:
    # No lifespan here: the app's start-up warm-up would make the issuer's outage a non-event.
    check_row(row, local_issuer, asgi_caller(TestClient(create_app(server, resource=RESOURCE))))


def test_fastapi_openapi_has_the_client_credentials_scheme_and_route_scopes(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    with TestClient(create_app(server, resource=RESOURCE)) as client:
        schema = client.get("/openapi.json").json()
        metadata = client.get("/.well-known/oauth-protected-resource/v1").json()
    assert schema["components"]["securitySchemes"] == {
        "OAuth2ClientCredentials": {
            "type": "oauth2",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": local_issuer.token_endpoint,  # found by discovery
                    "scopes": {"admin": "", "orders.read": "", "reports.read": ""},
                }
            },
        }
    }
    paths = schema["paths"]
    assert paths["/orders"]["get"]["security"] == [{"OAuth2ClientCredentials": ["orders.read"]}]
    assert paths["/reports"]["get"]["security"] == [
        {"OAuth2ClientCredentials": ["admin", "reports.read"]}
    ]
    assert "security" not in paths["/health"]["get"]
    assert metadata["scopes_supported"] == ["admin", "orders.read", "reports.read"]


def _bare_app(auth: BearerAuth, **middleware: Any) -> FastAPI:
    app = FastAPI()
    if middleware:
        app.add_middleware(BearerAuthMiddleware, **middleware)

    @app.get("/orders")
    async def orders(token: Annotated[AccessToken, Security(auth, scopes=["orders.read"])]) -> Any:
        return {"client": token.client_id}

    return app


def test_fastapi_security_scopes_are_enforced_and_token_url_can_be_configured(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    auth = BearerAuth(server, token_url="https://idp.example/token")
    with TestClient(_bare_app(auth)) as client:
        ok = client.get(
            "/orders", headers={"authorization": "Bearer " + local_issuer.mint(scope="orders.read")}
        )
        refused = client.get("/orders", headers={"authorization": "Bearer " + local_issuer.mint()})
        schema = client.get("/openapi.json").json()
        aclose_on(client, server)
    assert ok.json() == {"client": "test-client"}
    # Without install(): FastAPI's own body, but the RFC 6750 status and challenge.
    assert refused.status_code == 403
    assert refused.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", '
        'error_description="The access token lacks a required scope.", scope="orders.read"'
    )
    assert refused.json() == {"detail": "The access token lacks a required scope."}
    flows = schema["components"]["securitySchemes"]["OAuth2ClientCredentials"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "https://idp.example/token"


def test_fastapi_cache_hits_are_judged_as_misses_and_the_requirement_is_built_once(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    # Without a middleware, a cached token is answered without awaiting the server: the second
    # request of each token below is a hit, and must be admitted or refused as the first was.
    auth = BearerAuth(server, token_url="https://idp.example/token")
    good = {"authorization": "Bearer " + local_issuer.mint(scope="orders.read")}
    lacking = {"authorization": "Bearer " + local_issuer.mint()}
    with TestClient(_bare_app(auth)) as client:
        admitted = [client.get("/orders", headers=good).status_code for _ in range(2)]
        refused = [client.get("/orders", headers=lacking).status_code for _ in range(2)]
        missing = client.get("/orders", headers={"authorization": "Bearer"}).status_code
        aclose_on(client, server)
    assert (admitted, refused, missing) == ([200, 200], [403, 403], 400)
    assert list(auth._requirements) == [("orders.read",)]  # one per scope list, not per request


def test_fastapi_uses_the_middleware_token_and_its_challenge(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    auth = BearerAuth(server, token_url="https://idp.example/token")
    app = _bare_app(auth, server=server, realm="from-middleware")
    auth.install(app)
    with TestClient(app) as client:
        ok = client.get(
            "/orders", headers={"authorization": "Bearer " + local_issuer.mint(scope="orders.read")}
        )
        missing = client.get("/orders")
        refused = client.get("/orders", headers={"authorization": "Bearer " + local_issuer.mint()})
        aclose_on(client, server)
    assert ok.json() == {"client": "test-client"}
    assert local_issuer.count("jwks") == 1
    assert missing.headers["www-authenticate"] == 'Bearer realm="from-middleware"'
    assert refused.headers["www-authenticate"].startswith('Bearer realm="from-middleware", ')
    assert refused.json()["error"] == "insufficient_scope"


def test_fastapi_openapi_never_fails_before_discovery_and_fills_the_url_in_after(
    local_issuer: LocalIssuer,
) -> None:
    # No token_url=, and the issuer is down: /openapi.json and /docs still answer 200.
    server = ResourceServer(local_issuer.issuer_config())
    auth = BearerAuth(server)
    app = _bare_app(auth)
    auth.install(app)
    local_issuer.go_down()
    with TestClient(app) as client:
        first = client.get("/openapi.json")
        docs = client.get("/docs")
        flows = first.json()["components"]["securitySchemes"]["OAuth2ClientCredentials"]["flows"]
        assert flows["clientCredentials"]["tokenUrl"] == PENDING_TOKEN_URL
        down = client.get("/orders", headers={"authorization": "Bearer x.y.z"})
        local_issuer.come_back()
        token = local_issuer.mint(scope="orders.read")
        ok = client.get("/orders", headers={"authorization": f"Bearer {token}"})  # discovers
        again = client.get("/openapi.json").json()
        aclose_on(client, server)
    assert first.status_code == docs.status_code == 200
    assert down.status_code in (401, 503)  # never a 500
    assert ok.status_code == 200
    flows = again["components"]["securitySchemes"]["OAuth2ClientCredentials"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == local_issuer.token_endpoint


def test_fastapi_openapi_without_install_uses_the_placeholder(server: ResourceServer) -> None:
    with TestClient(_bare_app(BearerAuth(server))) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200
    flows = answer.json()["components"]["securitySchemes"]["OAuth2ClientCredentials"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == PENDING_TOKEN_URL


def test_fastapi_security_scopes_are_in_the_scheme_and_in_scopes_supported(
    server: ResourceServer,
) -> None:
    auth = BearerAuth(server, token_url="https://idp.example/token", resource=RESOURCE)
    app = _bare_app(auth)  # Security(auth, scopes=["orders.read"])
    auth.install(app)

    @app.get("/admin")
    async def admin(token: Annotated[AccessToken, Security(auth, scopes=["admin", "ops"])]) -> Any:
        return {}

    @app.get("/reports", dependencies=[auth.requires("reports.read")])
    async def reports() -> Any:
        return {}

    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
        metadata = client.get("/.well-known/oauth-protected-resource/v1").json()
    flows = schema["components"]["securitySchemes"]["OAuth2ClientCredentials"]["flows"]
    expected = ["admin", "ops", "orders.read", "reports.read"]
    assert sorted(flows["clientCredentials"]["scopes"]) == expected
    assert metadata["scopes_supported"] == expected
    assert schema["paths"]["/admin"]["get"]["security"] == [
        {"OAuth2ClientCredentials": ["admin", "ops"]}
    ]


def _requires_app(auth: BearerAuth) -> FastAPI:
    app = FastAPI()
    auth.install(app)

    @app.get("/orders")
    async def orders(token: Annotated[AccessToken, auth.requires("orders.read")]) -> Any:
        return {"client": token.client_id}

    @app.get("/reports", dependencies=[auth.requires(any_of=["reports.read", "admin"])])
    def reports() -> Any:
        return {"reports": []}

    return app


def test_fastapi_overrides_choose_the_caller_and_scopes_are_still_checked(
    server: ResourceServer,
) -> None:
    auth = BearerAuth(server, token_url="https://idp.example/token", realm="orders-api")
    app = _requires_app(auth)

    @app.get("/admin")
    async def admin(token: Annotated[AccessToken, Security(auth, scopes=["admin"])]) -> Any:
        return {"client": token.client_id}

    reader = access_token(scope="orders.read", subject="reader")
    app.dependency_overrides.update(auth.overrides(reader))
    with TestClient(app) as client:
        assert client.get("/orders").json() == {"client": "reader"}  # no header needed
        refused = client.get("/reports")  # the override's scopes are still checked
        refused_admin = client.get("/admin")
        app.dependency_overrides.update(auth.overrides(access_token(scope="admin")))
        admitted = client.get("/admin")
        app.dependency_overrides.update(auth.overrides(None))
        missing = client.get("/orders")
    assert refused.status_code == refused_admin.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    assert refused.headers["www-authenticate"].startswith('Bearer realm="orders-api", ')
    assert admitted.json() == {"client": "test-client"}
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="orders-api"'


def test_fastapi_dependency_overrides_can_replace_one_requirement(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    auth = BearerAuth(server, token_url="https://idp.example/token")
    app = _requires_app(auth)
    assert auth.requires("orders.read").dependency is auth.requires("orders.read").dependency
    admin = access_token(scope="admin", subject="root")
    app.dependency_overrides[auth.requires("orders.read").dependency] = lambda: admin
    with TestClient(app) as client:
        assert client.get("/orders").json() == {"client": "root"}  # the check is replaced
        assert client.get("/reports").status_code == 401  # other requirements are not
        token = local_issuer.mint(scope="admin")
        ok = client.get("/reports", headers={"authorization": f"Bearer {token}"})
        aclose_on(client, server)
    assert ok.json() == {"reports": []}


def test_fastapi_app_wide_and_route_requirements_compose(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    auth = BearerAuth(server, token_url="https://idp.example/token")
    app = FastAPI(dependencies=[auth.requires()])  # app-wide: any valid token
    auth.install(app)
    seen: list[AccessToken] = []

    @app.get("/orders")
    async def orders(token: Annotated[AccessToken, auth.requires("orders.read")]) -> Any:
        seen.append(token)
        return {}

    with TestClient(app) as client:
        token = local_issuer.mint(scope="orders.read")
        assert (
            client.get("/orders", headers={"authorization": f"Bearer {token}"}).status_code == 200
        )
        refused = client.get("/orders", headers={"authorization": "Bearer " + local_issuer.mint()})
        aclose_on(client, server)
    assert refused.status_code == 403
    assert len(seen) == 1
