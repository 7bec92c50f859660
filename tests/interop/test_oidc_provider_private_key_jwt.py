"""node-oidc-provider judges our private_key_jwt assertions (RFC 7523 §2.2, OIDC Core §9).

Its introspection endpoint authenticates the resource server by a JWT signed with the key whose
public half is registered in the client's `jwks`; it refuses a replayed `jti`, so every request
needing a new assertion is tested by introspecting several tokens.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bearerguard import Introspection, ResourceServer, UpstreamUnavailableError

from ..conftest import Twin
from .conftest import BASIC, KEY_INTROSPECTOR, OPAQUE_API, Provider


def server_for(provider: Provider, private_key: Any, *, discovered: bool) -> ResourceServer:
    where = (
        {"issuer": provider.issuer}  # aud: the issuer identifier
        if discovered
        else {"endpoint": provider.metadata["introspection_endpoint"]}  # aud: the endpoint
    )
    return ResourceServer(
        introspection=Introspection(
            **where,
            client_id=KEY_INTROSPECTOR.client_id,
            auth_method="private_key_jwt",
            private_key=private_key,
            audience=OPAQUE_API,
        )
    )


def introspections(provider: Provider) -> int:
    return provider.requests(provider.metadata["introspection_endpoint"])


@pytest.mark.parametrize("discovered", [True, False], ids=["aud=issuer", "aud=endpoint"])
def test_private_key_jwt_introspection(provider: Provider, twin: Twin, discovered: bool) -> None:
    server = server_for(provider, KEY_INTROSPECTOR.private_key, discovered=discovered)
    before = introspections(provider)
    for _ in range(3):  # three assertions: the provider would refuse a reused jti
        token = provider.token(BASIC, OPAQUE_API, scope="orders.read")
        access = twin.authenticate(server, "Bearer " + token)
        assert (access.client_id, access.scopes) == (BASIC.client_id, frozenset({"orders.read"}))
    assert introspections(provider) == before + 3


def test_unregistered_key_is_503_with_an_error_log(
    provider: Provider, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = server_for(provider, other, discovered=True)
    token = provider.token(BASIC, OPAQUE_API)
    with caplog.at_level(logging.ERROR, "bearerguard"), pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, "Bearer " + token)
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "401" in error and KEY_INTROSPECTOR.client_id in error and token not in error
