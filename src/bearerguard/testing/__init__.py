"""A self-contained OAuth 2.0 authorization server for tests and demos.

:class:`LocalIssuer` mints JWT (RFC 9068) and opaque access tokens and serves, over real HTTP on
a loopback port from a background thread, discovery metadata (OpenID Connect and RFC 8414), a
JWKS, a client-credentials token endpoint (RFC 6749 §4.4) and an introspection endpoint
(RFC 7662). It shares no code with the rest of bearerguard on purpose, so that the verifier is
tested against an independent implementation (``issuer_config()`` and ``access_token()`` go the
other way: bearerguard's own values, built for tests). Fault knobs (outages, failures, delays,
malformed bodies) and request counters make caching and retry behaviour testable::

    with LocalIssuer(algorithms=("RS256", "ES256")) as issuer:
        server = ResourceServer(issuer.issuer_config())  # trusts it, keys by discovery
        token = issuer.mint(scope="read")
        assert server.verify(token).scopes == {"read"}

:class:`DPoPKey` is a DPoP client key that makes proofs (RFC 9449 §4.2) for tests; with it,
``issuer.mint(dpop_jkt=key.jkt)`` is a DPoP-bound token. :func:`client_certificate` makes a
self-signed client certificate; ``issuer.mint(x5t_s256=cert.x5t_s256)`` is a token bound to it
(RFC 8705).
"""

from __future__ import annotations

from .._dpop_client import DPoPKey
from ._certs import ClientCertificate, client_certificate
from ._http import RecordedRequest
from ._issuer import LocalIssuer
from ._testkit import access_token

__all__ = [
    "ClientCertificate",
    "DPoPKey",
    "LocalIssuer",
    "RecordedRequest",
    "access_token",
    "client_certificate",
]

for _obj in (ClientCertificate, DPoPKey, LocalIssuer, RecordedRequest, client_certificate):
    _obj.__module__ = __name__  # documented as bearerguard.testing.X, as before the split
