"""DPoP-bound tokens from node-oidc-provider (RFC 9449 §5, §6): an independent implementation
accepts bearerguard's test client's proofs and binds the token to the same RFC 7638 thumbprint
bearerguard computes, for every proof algorithm."""

from __future__ import annotations

import jwt
import pytest

from bearerguard._dpop_client import DPoPKey
from bearerguard._thumbprint import jwk_thumbprint

from .conftest import BASIC, OPAQUE_API, RS256_API, Provider


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
