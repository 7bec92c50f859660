"""FastAPI: the example app through the error table, the OpenAPI document, and the fallbacks."""

from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Security
from fastapi_app import create_app
from starlette.testclient import TestClient

from bearerguard import AccessToken, ResourceServer
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.integrations.fastapi import BearerAuth
from bearerguard.testing import LocalIssuer

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


def test_fastapi_without_token_url_or_discovery_is_a_configuration_error(
    server: ResourceServer,
) -> None:
    app = _bare_app(BearerAuth(server))
    with TestClient(app) as client, pytest.raises(ValueError, match="token_url"):
        client.get("/openapi.json")
