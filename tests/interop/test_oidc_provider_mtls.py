"""Certificate-bound tokens from node-oidc-provider (RFC 8705 §3, its
`features.mTLS.certificateBoundAccessTokens`): the provider binds a token to the client
certificate of the token request (`cnf["x5t#S256"]`, its own thumbprint code), and bearerguard
verifies its bound JWTs and introspected bound opaque tokens with that certificate, whatever the
DPoP mode, and refuses them with another certificate or none.

The provider reads the token request's certificate from a header (provider.mjs's
`getCertificate`), as behind a TLS-terminating proxy: loopback HTTP has no TLS."""

from __future__ import annotations

import jwt
import pytest

from bearerguard import Credentials, InvalidTokenError, Issuer, Reason, ResourceServer
from bearerguard.testing import client_certificate

from ..conftest import Twin
from .conftest import INTROSPECTORS, MTLS, OPAQUE_API, RS256_API, Provider
from .test_oidc_provider_opaque import introspection

CERT, THIEF = client_certificate("orders-client-mtls"), client_certificate("thief")
URL = "https://orders.example/orders"
MODES = pytest.mark.parametrize("dpop", ["off", "allowed"])


def request(token: str, certificate: str | None) -> Credentials:
    return Credentials("Bearer", token, "GET", URL, (), certificate)


def refused(twin: Twin, server: ResourceServer, credentials: Credentials) -> Reason:
    with pytest.raises(InvalidTokenError) as caught:
        twin.verify_credentials(server, credentials)
    return caught.value.reason


def test_the_provider_binds_the_token_to_our_thumbprint(provider: Provider) -> None:
    token = provider.token(MTLS, RS256_API, certificate=CERT.pem)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["cnf"] == {"x5t#S256": CERT.x5t_s256}
    answer = provider.introspect(provider.token(MTLS, OPAQUE_API, certificate=CERT.pem))
    assert answer["active"] is True and answer["cnf"] == {"x5t#S256": CERT.x5t_s256}


@MODES
def test_its_certificate_bound_jwt(provider: Provider, twin: Twin, dpop: str) -> None:
    token = provider.token(MTLS, RS256_API, certificate=CERT.pem)
    server = ResourceServer(Issuer(issuer=provider.issuer, audience=RS256_API), dpop=dpop)  # type: ignore[arg-type]
    twin.servers.append(server)
    for form in (CERT.pem, CERT.escaped_pem(), CERT.xfcc()):  # a miss, then hits
        access = twin.verify_credentials(server, request(token, form))
        assert access.claims["cnf"] == {"x5t#S256": CERT.x5t_s256}
    assert refused(twin, server, request(token, THIEF.pem)) is Reason.CERT_BINDING
    assert refused(twin, server, request(token, None)) is Reason.CERT_BINDING
    with pytest.raises(InvalidTokenError):
        twin.authenticate(server, f"Bearer {token}")  # a header carries no certificate


@MODES
def test_its_certificate_bound_opaque_token_through_introspection(
    provider: Provider, twin: Twin, dpop: str
) -> None:
    token = provider.token(MTLS, OPAQUE_API, certificate=CERT.pem)
    config = introspection(provider, INTROSPECTORS[0], audience=OPAQUE_API)
    server = ResourceServer(introspection=config, dpop=dpop)  # type: ignore[arg-type]
    twin.servers.append(server)
    assert twin.verify_credentials(server, request(token, CERT.pem)).source == "introspection"
    assert twin.verify_credentials(server, request(token, CERT.xfcc()))  # the cached answer
    assert refused(twin, server, request(token, THIEF.escaped_pem())) is Reason.CERT_BINDING
    assert refused(twin, server, request(token, None)) is Reason.CERT_BINDING
