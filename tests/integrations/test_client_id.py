"""`AccessToken.client_id`: one documented rule per preset (and for introspection), so the
client of Jamf, Entra, Okta, Auth0, Keycloak and Cognito tokens is known, never None."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bearerguard import (
    ConfigurationError,
    Introspection,
    Issuer,
    ResourceServer,
    RoleResolver,
    presets,
)
from bearerguard.testing import LocalIssuer

from ..conftest import Twin

CLIENT = "0b1f6c2e-6b2d-4a57-9d7c-0a3c2a0d9e11"
TENANT = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
API = "c8f9d1e4-1111-4c2b-9c1e-5b1f0e7a9d10"

# (preset, the issuer the tokens carry, audience, the token's client claims) -> CLIENT
Preset = Callable[[LocalIssuer], Issuer | list[Issuer]]
CASES: list[tuple[str, Preset, str, str, dict[str, Any]]] = [
    (
        "jamf: sub (= aud)",
        lambda k: presets.jamf_pro(
            "https://acme.jamfcloud.com", CLIENT, RoleResolver(lambda r: []), jwks_uri=k.jwks_uri
        ),
        "https://acme.jamfcloud.com",
        CLIENT,
        {"sub": CLIENT, "subject-type": "REGISTERED_CLIENT_ID"},
    ),
    (
        "entra v2: azp",
        lambda k: presets.entra_id(TENANT, API, jwks_uri=k.jwks_uri),
        f"https://login.microsoftonline.com/{TENANT}/v2.0",
        API,
        {"azp": CLIENT, "sub": "oid-of-the-sp", "idtyp": "app"},
    ),
    (
        "entra v1: appid",
        lambda k: presets.entra_id(TENANT, API, jwks_uri=k.jwks_uri),
        f"https://sts.windows.net/{TENANT}/",
        API,
        {"appid": CLIENT, "sub": "oid-of-the-sp"},
    ),
    (
        "okta: cid",
        lambda k: presets.okta("acme.okta.com", "api://default", jwks_uri=k.jwks_uri),
        "https://acme.okta.com/oauth2/default",
        "api://default",
        {"cid": CLIENT, "sub": CLIENT},
    ),
    (
        "auth0: azp",
        lambda k: presets.auth0("acme.eu.auth0.com", "https://orders", jwks_uri=k.jwks_uri),
        "https://acme.eu.auth0.com/",
        "https://orders",
        {"azp": CLIENT, "sub": f"{CLIENT}@clients"},
    ),
    (
        "keycloak: azp",
        lambda k: presets.keycloak("https://sso.test", "acme", "orders", jwks_uri=k.jwks_uri),
        "https://sso.test/realms/acme",
        "orders",
        {"azp": CLIENT, "sub": "service-account-uuid"},
    ),
    (
        "cognito: client_id",
        lambda k: presets.cognito("eu-west-1", "eu-west-1_Ab", CLIENT, jwks_uri=k.jwks_uri),
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab",
        "",
        {"client_id": CLIENT, "token_use": "access", "sub": CLIENT},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_presets_name_the_client(
    local_issuer_session: LocalIssuer, twin: Twin, case: tuple[Any, ...]
) -> None:
    _, preset, issuer, audience, claims = case
    token = local_issuer_session.mint(
        issuer=issuer,
        audience=audience or None,
        omit=[name for name in ("client_id", "sub") if name not in claims],
        **{k: v for k, v in claims.items() if k != "sub"},
        subject=claims.get("sub"),
    )
    server = ResourceServer(preset(local_issuer_session))
    assert twin.authenticate(server, f"Bearer {token}").client_id == CLIENT


def test_the_default_rule_does_not_take_sub_for_the_client(
    local_issuer_session: LocalIssuer, twin: Twin
) -> None:
    # A delegated token's `sub` is a user: without a preset's rule it is never the client.
    server = ResourceServer(local_issuer_session.issuer_config())
    token = local_issuer_session.mint(subject="a-user", omit=["client_id"])
    assert twin.authenticate(server, f"Bearer {token}").client_id is None
    configured = ResourceServer(local_issuer_session.issuer_config(client_id_claims=["sub"]))
    assert twin.authenticate(configured, f"Bearer {token}").client_id == "a-user"


def _introspecting(at: LocalIssuer, **options: Any) -> ResourceServer:
    config = Introspection(
        endpoint=at.introspection_endpoint,
        client_id="test-client",
        client_secret="test-secret",
        **options,
    )
    return ResourceServer([], introspection=config)


def test_introspected_tokens_follow_the_rule(local_issuer_session: LocalIssuer, twin: Twin) -> None:
    at = local_issuer_session
    with_client = at.mint_opaque(client_id=CLIENT)
    only_azp = at.mint_opaque(client_id=None, azp=CLIENT)
    only_sub = at.mint_opaque(client_id=None, sub=CLIENT)
    default = _introspecting(at)
    assert twin.authenticate(default, f"Bearer {with_client}").client_id == CLIENT
    assert twin.authenticate(default, f"Bearer {only_azp}").client_id == CLIENT
    assert twin.authenticate(default, f"Bearer {only_sub}").client_id is None
    by_sub = _introspecting(at, client_id_claims=("client_id", "sub"))
    assert twin.authenticate(by_sub, f"Bearer {only_sub}").client_id == CLIENT


@pytest.mark.parametrize("bad", ["sub", [], [""], [1]])
def test_client_id_claims_are_checked(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="client_id_claims"):
        Issuer(issuer="https://idp.test", audience="x", client_id_claims=bad)
    with pytest.raises(ConfigurationError, match="client_id_claims"):
        Introspection(
            endpoint="https://idp.test/i", client_id="a", client_secret="b", client_id_claims=bad
        )
