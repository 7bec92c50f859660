"""DPoP-bound tokens from node-oidc-provider (RFC 9449 §5, §6, §7): an independent implementation
accepts bearerguard's test client's proofs and binds the token to the same RFC 7638 thumbprint
bearerguard computes, for every proof algorithm; bearerguard then verifies its bound JWTs and
introspected bound tokens with a proof, and refuses them without one or with another key's."""

from __future__ import annotations

import jwt
import pytest

from bearerguard import Credentials, InvalidTokenError, Issuer, Reason, ResourceServer
from bearerguard._thumbprint import jwk_thumbprint
from bearerguard.testing import DPoPKey

from ..conftest import Twin
from .conftest import BASIC, INTROSPECTORS, OPAQUE_API, RS256_API, Provider
from .test_oidc_provider_opaque import introspection


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "PS256", "EdDSA"])
def test_the_provider_binds_the_token_to_our_thumbprint(provider: Provider, alg: str) -> None:
    key = DPoPKey(alg)
    token = provider.token(BASIC, RS256_API, dpop=key)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": key.jkt}
    assert jwk_thumbprint(key.jwk) == key.jkt  # the server side's thumbprint, the same value


def test_the_provider_introspects_a_bound_opaque_token_with_its_cnf(provider: Provider) -> None:
    key = DPoPKey("ES256")
    token = provider.token(BASIC, OPAQUE_API, dpop=key)
    answer = provider.introspect(token)
    assert answer["active"] is True and answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": key.jkt}


URL = "https://orders.example/orders"


def test_its_dpop_bound_jwt_is_verified_with_a_proof_and_refused_without(
    provider: Provider, twin: Twin
) -> None:
    key = DPoPKey("ES256")
    token = provider.token(BASIC, RS256_API, dpop=key)
    server = ResourceServer(Issuer(issuer=provider.issuer, audience=RS256_API), dpop="allowed")
    twin.servers.append(server)
    with_proof = Credentials("DPoP", token, "GET", URL, (key.proof("GET", URL, token),))
    assert twin.verify_credentials(server, with_proof).claims["cnf"] == {"jkt": key.jkt}
    # Stolen: the token alone, as a bearer token, or with a proof of another key.
    with pytest.raises(InvalidTokenError) as downgraded:
        twin.verify_credentials(server, Credentials("Bearer", token, "GET", URL))
    assert downgraded.value.reason is Reason.DPOP_DOWNGRADE
    thief = DPoPKey("ES256")
    stolen = Credentials("DPoP", token, "GET", URL, (thief.proof("GET", URL, token),))
    with pytest.raises(InvalidTokenError) as other_key:
        twin.verify_credentials(server, stolen)
    assert other_key.value.reason is Reason.DPOP_BINDING


def test_its_dpop_bound_opaque_token_is_verified_through_introspection(
    provider: Provider, twin: Twin
) -> None:
    key = DPoPKey("ES256")
    token = provider.token(BASIC, OPAQUE_API, dpop=key)
    config = introspection(provider, INTROSPECTORS[0], audience=OPAQUE_API)
    server = ResourceServer(introspection=config, dpop="allowed")
    twin.servers.append(server)
    with_proof = Credentials("DPoP", token, "GET", URL, (key.proof("GET", URL, token),))
    assert twin.verify_credentials(server, with_proof).claims["cnf"] == {"jkt": key.jkt}
    with pytest.raises(InvalidTokenError) as downgraded:
        twin.verify_credentials(server, Credentials("Bearer", token, "GET", URL))
    assert downgraded.value.reason is Reason.DPOP_DOWNGRADE


def test_a_dpop_off_server_refuses_its_dpop_bound_tokens(provider: Provider, twin: Twin) -> None:
    """A server with DPoP off takes a DPoP-bound token only as a bearer token: refused, JWT and
    introspected alike, on the miss and on the cached hit (RFC 9449 §7.2)."""
    key = DPoPKey("ES256")
    jwt_server = ResourceServer(Issuer(issuer=provider.issuer, audience=RS256_API))
    config = introspection(provider, INTROSPECTORS[0], audience=OPAQUE_API)
    opaque_server = ResourceServer(introspection=config)
    twin.servers += [jwt_server, opaque_server]
    for server, audience in ((jwt_server, RS256_API), (opaque_server, OPAQUE_API)):
        token = provider.token(BASIC, audience, dpop=key)
        for _ in range(2):
            with pytest.raises(InvalidTokenError) as downgraded:
                twin.verify_credentials(server, Credentials("Bearer", token, "GET", URL))
            assert downgraded.value.reason is Reason.DPOP_DOWNGRADE
        assert twin.verify_credentials(
            server, Credentials("Bearer", provider.token(BASIC, audience), "GET", URL)
        )
