"""One end-to-end test per token shape of ../shared/docs/token-shapes.md, signed by a local issuer.

The issuers' URLs are the real systems' forms; their keys are served by a LocalIssuer on
127.0.0.1 (configured as `jwks_uri`), so every test exercises real HTTP key fetching.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bearerguard import InvalidTokenError, Issuer, Reason, ResourceServer
from bearerguard.testing import LocalIssuer

from .conftest import Twin

TENANT = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_CLIENT = "6e74172b-be56-4843-9ff4-e66a39bb12e3"  # the calling daemon app
ORDERS_APP = "c8f9d1e4-1111-4c2b-9c1e-5b1f0e7a9d10"  # the API's own app registration


@pytest.fixture(scope="module")
def keys() -> Iterator[LocalIssuer]:
    with LocalIssuer(algorithms=("RS256", "HS256")) as local:
        yield local


def test_shape_jamf_pro_api_client(keys: LocalIssuer, twin: Twin) -> None:
    client = str(uuid.uuid4())
    jamf = "http://127.0.0.1:8443"  # Jamf's iss may be plain http
    server = ResourceServer(Issuer(issuer=jamf, audience=client, jwks_uri=keys.jwks_uri))
    now = int(time.time())
    jamf_claims: dict[str, Any] = {  # hyphenated names cannot be keyword arguments
        "token-uuid": str(uuid.uuid4()),
        "subject-type": "REGISTERED_CLIENT_ID",
        "authentication-type": "CLIENT_CREDENTIALS",
    }
    token = keys.mint(
        issuer=jamf,
        subject=client,
        audience=client,
        expires_in=60,
        scope=["api-role:2", "api-role:7"],  # a JSON array of role ids
        nbf=now,
        omit=["client_id", "jti"],
        **jamf_claims,
    )
    access = twin.verify(server, token)
    assert access.scopes == {"api-role:2", "api-role:7"}
    assert access.subject == client
    assert access.claims["subject-type"] == "REGISTERED_CLIENT_ID"
    assert access.expires_at == now + 60
    # Another API client's token (aud is the client id) is not accepted.
    with pytest.raises(InvalidTokenError) as info:
        twin.verify(server, keys.mint(issuer=jamf, subject="x", audience="x", expires_in=60))
    assert info.value.reason is Reason.AUDIENCE


def test_shape_multi_tenant_auth_rest_api_hs256(keys: LocalIssuer, twin: Twin) -> None:
    tenant_url = "https://my.domain.org/_api/auth/mytenant"
    server = ResourceServer(
        Issuer(
            issuer=tenant_url,
            audience=tenant_url,
            algorithms=["HS256"],
            shared_secret=keys.shared_secret("HS256"),
        )
    )
    before = keys.count()
    token = keys.mint(
        alg="HS256",
        issuer=tenant_url,
        audience=[tenant_url, "https://my.domain.org/_api/auth/other"],
        scope="auth.clients.list auth.users.create auth.clients.jwk_create",
        gty="client_credentials",
        azp=1234,  # numeric client id
        omit=["client_id"],
    )
    access = twin.verify(server, token)
    assert access.scopes == {"auth.clients.list", "auth.users.create", "auth.clients.jwk_create"}
    assert access.client_id == "1234"
    assert keys.count() == before  # a shared-secret issuer needs no network at all
    # The same issuer's RS256 tokens are not accepted: only HS256 was configured.
    with pytest.raises(InvalidTokenError) as info:
        twin.verify(server, keys.mint(alg="RS256", issuer=tenant_url, audience=tenant_url))
    assert info.value.reason is Reason.ALGORITHM


def test_shape_cyberark_identity_jwt_rs256(keys: LocalIssuer, twin: Twin) -> None:
    iss = "https://aab1234.id.cyberark.cloud/orders-api/"
    server = ResourceServer(Issuer(issuer=iss, audience="orders-api", jwks_uri=keys.jwks_uri))
    now = int(time.time())
    token = keys.mint(
        issuer=iss,
        audience="orders-api",
        subject="svc-orders@aab1234.cyberark.cloud",
        scope="orders",
        expires_in=18000,
        headers={"x5t": "dGh1bWJwcmludA"},
        unique_name="svc-orders@aab1234.cyberark.cloud",
        app_id="orders-api",
        tenant="AAB1234",
        auth_time=now,
        omit=["client_id"],
    )
    access = twin.verify(server, token)
    assert access.scopes == {"orders"}
    assert access.subject == "svc-orders@aab1234.cyberark.cloud"


def entra(keys: LocalIssuer) -> ResourceServer:
    roles = ("roles", "scp")
    return ResourceServer(
        [
            Issuer(
                issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0",
                audience=ORDERS_APP,
                jwks_uri=keys.jwks_uri,
                scope_claims=roles,
            ),
            Issuer(
                issuer=f"https://sts.windows.net/{TENANT}/",
                audience=f"api://{ORDERS_APP}",
                jwks_uri=keys.jwks_uri,
                scope_claims=roles,
            ),
            Issuer(
                issuer=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0",
                audience="api://orders-demo",
                jwks_uri=keys.jwks_uri,
                scope_claims=roles,
            ),
        ]
    )


def test_shape_entra_v2_app_roles(keys: LocalIssuer, twin: Twin) -> None:
    token = keys.mint(
        typ="JWT",
        issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0",
        audience=ORDERS_APP,
        subject="2a6b3f2e-oid",
        roles=["Orders.Read", "Orders.Write"],
        azp=ENTRA_CLIENT,
        azpacr="1",
        tid=TENANT,
        oid="2a6b3f2e-oid",
        idtyp="app",
        ver="2.0",
        omit=["client_id", "jti"],
        uti="AbCdEf",
    )
    access = twin.verify(entra(keys), token)
    assert access.scopes == {"Orders.Read", "Orders.Write"}
    assert access.client_id == ENTRA_CLIENT
    assert access.issuer.endswith("/v2.0")


def test_shape_entra_v1_app_roles(keys: LocalIssuer, twin: Twin) -> None:
    token = keys.mint(
        typ="JWT",
        headers={"x5t": "nOo3ZDrODXEK1jKWhXslHR_KXEg"},
        issuer=f"https://sts.windows.net/{TENANT}/",
        audience=f"api://{ORDERS_APP}",
        roles=["Orders.Read"],
        appid=ENTRA_CLIENT,
        appidacr="1",
        tid=TENANT,
        idtyp="app",
        ver="1.0",
        omit=["client_id"],
    )
    access = twin.verify(entra(keys), token)
    assert access.scopes == {"Orders.Read"}
    assert access.client_id == ENTRA_CLIENT


def test_shape_entra_two_tenants_keep_their_audiences(keys: LocalIssuer, twin: Twin) -> None:
    server = entra(keys)
    demo = f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"
    twin.verify(server, keys.mint(issuer=demo, audience="api://orders-demo", roles=["Orders.Read"]))
    with pytest.raises(InvalidTokenError) as info:  # the production audience, demo tenant
        twin.verify(server, keys.mint(issuer=demo, audience=ORDERS_APP))
    assert info.value.reason is Reason.AUDIENCE


def test_shape_node_oidc_provider_rfc9068(keys: LocalIssuer, twin: Twin) -> None:
    server = ResourceServer(
        Issuer(
            issuer=keys.issuer,
            audience="https://orders.example.test",
            rfc9068=True,
        )
    )
    with_scope = keys.mint(audience="https://orders.example.test", scope="orders.read")
    without_scope = keys.mint(audience="https://orders.example.test")  # scope omitted
    assert twin.verify(server, with_scope).scopes == {"orders.read"}
    access = twin.verify(server, without_scope)
    assert access.scopes == frozenset()
    assert access.client_id == access.subject == "test-client"
    with pytest.raises(InvalidTokenError) as info:
        twin.verify(server, keys.mint(audience="https://orders.example.test", typ="JWT"))
    assert info.value.reason is Reason.TYPE
