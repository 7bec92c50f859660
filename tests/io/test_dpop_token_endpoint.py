"""LocalIssuer's token endpoint honours a DPoP proof (RFC 9449 §5): the token it issues is bound
to the proof's key, and a DPoP-enabled server accepts it with that key's proofs only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from bearerguard import Credentials, Introspection, InvalidTokenError, ResourceServer
from bearerguard.testing import DPoPKey, LocalIssuer

URL = "https://api.test/orders"
CLIENT = ("test-client", "test-secret")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def token_request(
    http: httpx.Client, issuer: LocalIssuer, proof: str | None, **form: str
) -> httpx.Response:
    headers = {} if proof is None else {"DPoP": proof}
    data = {"grant_type": "client_credentials", **form}
    return http.post(issuer.token_endpoint, data=data, auth=CLIENT, headers=headers)


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_a_token_requested_with_a_proof_is_bound_to_its_key(
    http: httpx.Client, local_issuer: LocalIssuer, token_format: str
) -> None:
    key = DPoPKey("ES256")
    proof = key.proof("POST", local_issuer.token_endpoint)
    answer = token_request(http, local_issuer, proof, token_format=token_format).json()
    assert answer["token_type"] == "DPoP"
    token = answer["access_token"]
    if token_format == "jwt":
        assert jwt.decode(token, options={"verify_signature": False})["cnf"] == {"jkt": key.jkt}
    opaque = introspection(local_issuer) if token_format == "opaque" else None
    server = ResourceServer(local_issuer.issuer_config(), dpop="allowed", introspection=opaque)
    with server:
        own = Credentials("DPoP", token, "GET", URL, (key.proof("GET", URL, token),))
        assert server.verify_credentials(own).client_id == "test-client"
        stolen = Credentials("DPoP", token, "GET", URL, (DPoPKey().proof("GET", URL, token),))
        with pytest.raises(InvalidTokenError):
            server.verify_credentials(stolen)
    assert token_request(http, local_issuer, None).json()["token_type"] == "Bearer"


def introspection(issuer: LocalIssuer) -> Introspection:
    return Introspection(
        endpoint=issuer.introspection_endpoint, client_id=CLIENT[0], client_secret=CLIENT[1]
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda key, issuer: key.proof("GET", issuer.token_endpoint),  # another method
        lambda key, issuer: key.proof("POST", issuer.token_endpoint + "/x"),  # another URL
        lambda key, issuer: key.proof("POST", issuer.token_endpoint, iat=1),  # too old
        lambda key, issuer: key.proof("POST", issuer.token_endpoint, header={"typ": "JWT"}),
        lambda key, issuer: key.proof("POST", issuer.token_endpoint) + "x",  # signature
        lambda key, issuer: "not a proof",
    ],
)
def test_a_bad_proof_at_the_token_endpoint_is_invalid_dpop_proof(
    http: httpx.Client, local_issuer: LocalIssuer, make: Any
) -> None:
    response = token_request(http, local_issuer, make(DPoPKey("ES256"), local_issuer))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"
