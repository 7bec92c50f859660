"""Every claim format and every preset, with tokens of the shapes in token-shapes.md, through the
ASGI and the WSGI middleware. Tokens are signed by a LocalIssuer whose JWKS URL replaces each
preset's remote one (`jwks_uri=` override), so keys are fetched over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from bearerguard import ConfigurationError, Issuer, ResourceServer, RoleResolver, presets
from bearerguard.asgi import SCOPE_KEY, BearerAuthMiddleware
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from .conftest import Call, asgi_caller, wsgi_caller

TENANT = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
API_APP = "c8f9d1e4-1111-4c2b-9c1e-5b1f0e7a9d10"
DAEMON = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
JAMF_CLIENT = "0b1f6c2e-6b2d-4a57-9d7c-0a3c2a0d9e11"
COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
Issuers = Callable[[LocalIssuer], Issuer | list[Issuer]]
Mint = Callable[[LocalIssuer], str]


@pytest.fixture(scope="module")
def keys() -> Iterator[LocalIssuer]:
    with LocalIssuer(rfc9068=False) as local:
        yield local


async def asgi_echo(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps(sorted(scope[SCOPE_KEY].scopes)).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def wsgi_echo(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [json.dumps(sorted(environ[SCOPE_KEY].scopes)).encode()]


@dataclass(frozen=True)
class Case:
    name: str
    issuers: Issuers
    token: Mint
    scopes: set[str] | None  # None: refused with 401
    reason: str = ""


def generic(*claims: str) -> Issuers:
    return lambda k: Issuer(issuer=k.issuer, audience=k.audience, scope_claims=claims)


def mint(**claims: Any) -> Mint:
    return lambda k: k.mint(**claims)


_TYPE = "The access token has a claim of the wrong type."

CLAIM_FORMATS = [
    Case("scope string", generic("scope"), mint(scope="a b  c"), {"a", "b", "c"}),
    Case("scope array", generic("scope"), mint(scope=["a", "b"]), {"a", "b"}),
    Case("scp string", generic("scp"), mint(scp="a b"), {"a", "b"}),
    Case("scp array", generic("scp"), mint(scp=["a"]), {"a"}),
    Case("roles array", generic("roles"), mint(roles=["Orders.Read"]), {"Orders.Read"}),
    Case("permissions", generic("permissions"), mint(permissions=["read:x"]), {"read:x"}),
    Case(
        "dotted path",
        generic("realm_access.roles"),
        mint(realm_access={"roles": ["admin"]}),
        {"admin"},
    ),
    Case("URL-named claim", generic("https://x.test/r"), mint(**{"https://x.test/r": "a"}), {"a"}),
    Case(
        "several claims are unioned",
        generic("scope", "scp", "roles"),
        mint(scope="a", scp=["b"], roles=["c"]),
        {"a", "b", "c"},
    ),
    Case("defaults: scope and scp", generic("scope", "scp"), mint(roles=["r"]), set()),
    Case("absent claim", generic("scope"), mint(), set()),
    Case("empty string", generic("scope"), mint(scope=""), set()),
    Case("scope a number", generic("scope"), mint(scope=5), None, _TYPE),
    Case("non-string entry", generic("scope"), mint(scope=["a", 1]), None, _TYPE),
    Case("null entry", generic("scp"), mint(scp=["a", None]), None, _TYPE),
    Case("nested array", generic("roles"), mint(roles=[["a"]]), None, _TYPE),
    Case("an object", generic("scp"), mint(scp={"a": 1}), None, _TYPE),
    Case("a boolean", generic("roles"), mint(roles=True), None, _TYPE),
    Case(
        "dotted path, wrong type",
        generic("realm_access.roles"),
        mint(realm_access={"roles": [1]}),
        None,
        _TYPE,
    ),
]


def entra(k: LocalIssuer) -> list[Issuer]:
    return presets.entra_id(TENANT, [API_APP, f"api://{API_APP}"], jwks_uri=k.jwks_uri)


def jamf(k: LocalIssuer) -> Issuer:
    roles = RoleResolver(lambda role_id: {"2": ["Read Computers"], "7": ["Read Users"]}[role_id])
    server = "http://jamf.example.test:8080"
    return presets.jamf_pro(server, [JAMF_CLIENT], roles, jwks_uri=k.jwks_uri)


JAMF_CLAIMS: dict[str, Any] = {"token-uuid": "4d1c", "subject-type": "REGISTERED_CLIENT_ID"}


def jamf_token(audience: str) -> Mint:
    return lambda k: k.mint(
        issuer="http://jamf.example.test:8080",
        audience=audience,
        subject=audience,
        expires_in=60,
        scope=["api-role:2", "api-role:7"],
        omit=["client_id", "jti"],
        **JAMF_CLAIMS,
    )


def cognito(k: LocalIssuer) -> Issuer:
    return presets.cognito("eu-west-1", "eu-west-1_AbCdEf123", ["app-1"], jwks_uri=k.jwks_uri)


def cognito_token(**claims: Any) -> Mint:
    base = {"client_id": "app-1", "token_use": "access", "scope": "orders/read"}
    return lambda k: k.mint(issuer=COGNITO, audience=None, **(base | claims))


def keycloak(k: LocalIssuer) -> Issuer:
    return presets.keycloak(
        "https://sso.example.test/", "acme", "orders-api", client_roles="orders-api",
        jwks_uri=k.jwks_uri,
    )  # fmt: skip


KEYCLOAK = "https://sso.example.test/realms/acme"
V2 = f"https://login.microsoftonline.com/{TENANT}/v2.0"
V1 = f"https://sts.windows.net/{TENANT}/"
AUTH0 = "https://acme.eu.auth0.com/"
OKTA = "https://acme.okta.com/oauth2/default"

PRESETS = [
    Case(
        "entra v2 app roles",
        entra,
        mint(issuer=V2, audience=API_APP, roles=["Orders.Read", "Orders.Write"], azp=DAEMON),
        {"Orders.Read", "Orders.Write"},
    ),
    Case(
        "entra v1 app roles",
        entra,
        mint(issuer=V1, audience=f"api://{API_APP}", roles=["Orders.Read"], appid=DAEMON),
        {"Orders.Read"},
    ),
    Case("entra delegated scp", entra, mint(issuer=V2, audience=API_APP, scp="A B"), {"A", "B"}),
    Case(
        "entra other tenant",
        entra,
        mint(issuer="https://login.microsoftonline.com/other/v2.0", audience=API_APP),
        None,
        "The access token was issued by an untrusted issuer.",
    ),
    Case(
        "entra app permissions only: scp grants nothing",
        lambda k: presets.entra_id(TENANT, API_APP, app_permissions_only=True, jwks_uri=k.jwks_uri),
        mint(issuer=V2, audience=API_APP, scp="Orders.Read", roles=["Orders.Write"]),
        {"Orders.Write"},
    ),
    Case(
        "entra us government v2",
        lambda k: presets.entra_id(TENANT, API_APP, cloud="usgov", jwks_uri=k.jwks_uri),
        mint(
            issuer=f"https://login.microsoftonline.us/{TENANT}/v2.0", audience=API_APP, roles=["R"]
        ),
        {"R"},
    ),
    Case(
        "entra us government refuses the global issuer",
        lambda k: presets.entra_id(TENANT, API_APP, cloud="usgov", jwks_uri=k.jwks_uri),
        mint(issuer=V2, audience=API_APP, roles=["R"]),
        None,
        "The access token was issued by an untrusted issuer.",
    ),
    Case(
        "entra china v1",
        lambda k: presets.entra_id(TENANT, API_APP, cloud="china", jwks_uri=k.jwks_uri),
        mint(issuer=f"https://sts.chinacloudapi.cn/{TENANT}/", audience=API_APP, roles=["R"]),
        {"R"},
    ),
    Case(
        "auth0 permissions",
        lambda k: presets.auth0("acme.eu.auth0.com", "https://orders", jwks_uri=k.jwks_uri),
        mint(
            issuer=AUTH0,
            audience=["https://orders", "https://acme.eu.auth0.com/userinfo"],
            scope="openid",
            permissions=["read:orders"],
            gty="client-credentials",
        ),
        {"openid", "read:orders"},
    ),
    Case(
        "auth0 issuer without its slash",
        lambda k: presets.auth0("https://acme.eu.auth0.com", "https://orders", jwks_uri=k.jwks_uri),
        mint(issuer=AUTH0.rstrip("/"), audience="https://orders"),
        None,
        "The access token was issued by an untrusted issuer.",
    ),
    Case(
        "okta scp",
        lambda k: presets.okta("acme.okta.com", "api://default", jwks_uri=k.jwks_uri),
        mint(issuer=OKTA, audience="api://default", scp=["orders.read"], cid="0oa1"),
        {"orders.read"},
    ),
    Case(
        "keycloak realm and client roles",
        keycloak,
        mint(
            issuer=KEYCLOAK,
            audience=["orders-api", "account"],
            scope="profile email",
            realm_access={"roles": ["offline_access", "orders-admin"]},
            resource_access={"orders-api": {"roles": ["reader"]}, "account": {"roles": ["x"]}},
            azp="orders-cli",
        ),
        {"profile", "email", "offline_access", "orders-admin", "reader"},
    ),
    Case(
        "keycloak with only aud account",
        keycloak,
        mint(issuer=KEYCLOAK, audience="account"),
        None,
        "The access token is not intended for this resource.",
    ),
    Case("cognito access token", cognito, cognito_token(), {"orders/read"}),
    Case(
        "cognito id token",
        cognito,
        cognito_token(token_use="id"),
        None,
        "The access token has a claim with a value that is not accepted.",
    ),
    Case(
        "cognito other client",
        cognito,
        cognito_token(client_id="app-2"),
        None,
        "The access token has a claim with a value that is not accepted.",
    ),
    Case(
        "cognito without client_id",
        cognito,
        lambda k: k.mint(issuer=COGNITO, audience=None, token_use="access", omit=["client_id"]),
        None,
        "The access token lacks a required claim.",
    ),
    Case(
        "jamf roles resolved",
        jamf,
        jamf_token(JAMF_CLIENT),
        {"Read Computers", "Read Users"},
    ),
    Case(
        "jamf other client",
        jamf,
        jamf_token("another-client"),
        None,
        "The access token is not intended for this resource.",
    ),
    Case(
        "generic oidc (node-oidc-provider)",
        lambda k: presets.oidc(k.issuer, "https://orders.example.test", rfc9068=True),
        mint(typ="at+jwt", audience="https://orders.example.test", scope="orders.read"),
        {"orders.read"},
    ),
]


@pytest.fixture(params=["asgi", "wsgi"])
def call_with(request: pytest.FixtureRequest) -> Iterator[Callable[[ResourceServer], Call]]:
    servers: list[ResourceServer] = []

    def make(server: ResourceServer) -> Call:
        servers.append(server)
        if request.param == "asgi":
            return asgi_caller(TestClient(BearerAuthMiddleware(asgi_echo, server)))
        return wsgi_caller(BearerAuthWSGIMiddleware(wsgi_echo, server))

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("case", [*CLAIM_FORMATS, *PRESETS], ids=lambda c: c.name)
def test_claim_formats_and_presets(
    keys: LocalIssuer, call_with: Callable[[ResourceServer], Call], case: Case
) -> None:
    call = call_with(ResourceServer(case.issuers(keys)))
    answer = call("/", ["Bearer " + case.token(keys)])
    if case.scopes is None:
        assert answer.status == 401
        assert answer.json()["error_description"] == case.reason
    else:
        assert answer.status == 200, answer
        assert set(answer.json()) == case.scopes


def test_role_lookup_failure_is_503_through_the_middleware(
    keys: LocalIssuer, call_with: Callable[[ResourceServer], Call]
) -> None:
    def down(role_id: str) -> list[str]:
        raise ConnectionError("jamf unreachable")

    issuer = presets.jamf_pro(
        "http://jamf.example.test:8080", JAMF_CLIENT, RoleResolver(down), jwks_uri=keys.jwks_uri
    )
    answer = call_with(ResourceServer(issuer))("/", ["Bearer " + jamf_token(JAMF_CLIENT)(keys)])
    assert answer.status == 503
    assert answer.json()["error"] == "temporarily_unavailable"


def test_presets_are_ordinary_issuers() -> None:
    v2, v1 = presets.entra_id(TENANT, API_APP)
    assert v2.issuer == V2 and v1.issuer == V1
    assert v2.discovery_url == f"{V2}/.well-known/openid-configuration"
    assert v2.scope_claims == ("roles", "scp")
    assert presets.auth0("acme.eu.auth0.com", "x") == Issuer(
        issuer=AUTH0,
        audience="x",
        jwks_uri=f"{AUTH0}.well-known/jwks.json",
        scope_claims=("scope", "permissions"),
        client_id_claims=("client_id", "azp"),
    )
    assert presets.okta("acme.okta.com", "x", leeway=5).leeway == 5.0  # overrides win
    assert presets.cognito("eu-west-1", "eu-west-1_AbCdEf123", "c").claim_values == {
        "client_id": ("c",),
        "token_use": ("access",),
    }
    with pytest.raises(ConfigurationError, match="tenant id"):
        presets.entra_id("common", API_APP)


def test_entra_id_overrides_every_field_and_knows_the_clouds() -> None:
    custom = f"https://login.microsoftonline.com/{TENANT}/v2.0/custom"
    (v2,) = presets.entra_id(TENANT, API_APP, versions=["v2"], issuer=custom, leeway=5)
    assert (v2.issuer, v2.leeway, v2.scope_claims) == (custom, 5.0, ("roles", "scp"))
    (v1,) = presets.entra_id(TENANT, API_APP, versions="v1", algorithms=["RS256"])
    assert (v1.issuer, v1.algorithms) == (V1, ("RS256",))
    with pytest.raises(ConfigurationError, match="versions"):  # not a TypeError
        presets.entra_id(TENANT, API_APP, issuer=custom)
    with pytest.raises(ConfigurationError, match="cloud"):
        presets.entra_id(TENANT, API_APP, cloud="germany")
    with pytest.raises(ConfigurationError, match="versions"):
        presets.entra_id(TENANT, API_APP, versions=["v3"])
    gov, gov1 = presets.entra_id(TENANT, API_APP, cloud="usgov")
    assert gov.discovery_url == (
        f"https://login.microsoftonline.us/{TENANT}/v2.0/.well-known/openid-configuration"
    )
    assert gov1.issuer == V1  # Azure Government's v1 tokens name the same STS host
    cn2, cn1 = presets.entra_id(TENANT, API_APP, cloud="china")
    assert cn2.issuer == f"https://login.partner.microsoftonline.cn/{TENANT}/v2.0"
    assert cn1.issuer == f"https://sts.chinacloudapi.cn/{TENANT}/"
    assert cn1.discovery_url == (
        f"https://login.partner.microsoftonline.cn/{TENANT}/.well-known/openid-configuration"
    )
    (only_roles,) = presets.entra_id(TENANT, API_APP, versions=["v2"], app_permissions_only=True)
    assert only_roles.scope_claims == ("roles",)
    with pytest.raises(ConfigurationError, match="https"):  # a plain-http Jamf needs opting in
        presets.jamf_pro("http://jamf.example.test", "c", RoleResolver(lambda r: []))
