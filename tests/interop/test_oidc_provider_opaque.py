"""Opaque tokens of node-oidc-provider, judged by its RFC 7662 introspection endpoint.

Revocation (RFC 7009) at the provider, the introspection cache, the provider's refusal to
introspect JWTs, and mixed mode: the provider's JWTs verified locally, its opaque tokens
introspected. Its opaque tokens live in its memory only, so each test gets its own.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bearerguard import (
    InsufficientScopeError,
    Introspection,
    InvalidTokenError,
    Issuer,
    Reason,
    Requirement,
    ResourceServer,
    UpstreamUnavailableError,
)

from ..conftest import FakeClock, Twin
from .conftest import (
    BASIC,
    ES256_API,
    INTROSPECTORS,
    OPAQUE_API,
    POST,
    RS256_API,
    TOKEN_TTL,
    Client,
    Provider,
)

CACHE_TTL = 60.0  # cache_max_ttl: how long a revoked token may still be accepted
assert CACHE_TTL < TOKEN_TTL  # else the token's real `exp` would end the caching first

# The resource server's client at the provider, each paired with a client whose tokens it judges.
INTROSPECTOR_PAIRS = pytest.mark.parametrize(
    ("introspector", "client"),
    [(INTROSPECTORS[0], BASIC), (INTROSPECTORS[1], POST)],
    ids=[INTROSPECTORS[0].auth_method, INTROSPECTORS[1].auth_method],
)


def introspection(
    provider: Provider,
    introspector: Client,
    *,
    discovered: bool = True,
    audience: str = OPAQUE_API,
    **options: Any,
) -> Introspection:
    """This API's introspection: the endpoint discovered from the issuer, or configured."""
    where = (
        {"issuer": provider.issuer}
        if discovered
        else {"endpoint": provider.metadata["introspection_endpoint"]}
    )
    return Introspection(
        **where,
        client_id=introspector.client_id,
        client_secret=introspector.client_secret,
        auth_method=introspector.auth_method,
        audience=audience,
        **options,
    )


def bearer(token: str) -> str:
    return "Bearer " + token


def introspections(provider: Provider) -> int:
    """How many introspection requests the provider has received so far."""
    return provider.requests(provider.metadata["introspection_endpoint"])


def discoveries(provider: Provider) -> int:
    return provider.requests(f"{provider.issuer}/.well-known/openid-configuration")


@INTROSPECTOR_PAIRS
@pytest.mark.parametrize("discovered", [False, True], ids=["endpoint", "discovered"])
def test_opaque_token_is_accepted_until_revoked_and_the_cache_expires(
    provider: Provider,
    twin: Twin,
    clock: FakeClock,
    *,
    introspector: Client,
    client: Client,
    discovered: bool,
) -> None:
    config = introspection(provider, introspector, discovered=discovered, cache_max_ttl=CACHE_TTL)
    server = ResourceServer(introspection=config, clock=clock.time, timer=clock.monotonic)
    raw = provider.token(client, OPAQUE_API, scope="orders.read")
    assert "." not in raw  # what the provider really issued: no JWT

    asked = introspections(provider)
    token = twin.authenticate(server, bearer(raw))
    assert introspections(provider) == asked + 1
    assert (token.source, token.client_id, token.issuer) == (
        "introspection",
        client.client_id,
        provider.issuer,
    )
    assert token.scopes == {"orders.read"}
    assert token.claims["aud"] == OPAQUE_API
    assert token.expires_at == provider.introspect(raw)["exp"]
    with pytest.raises(InsufficientScopeError):
        Requirement.of("orders.write").check(token)

    provider.revoke(client, raw)
    clock.advance(CACHE_TTL - 1)
    asked = introspections(provider)
    assert twin.authenticate(server, bearer(raw)).client_id == client.client_id  # cached answer
    assert introspections(provider) == asked

    clock.advance(1)  # the cached answer's deadline: the provider is asked again, and says no
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(raw))
    assert info.value.reason is Reason.INACTIVE
    assert info.value.status_code == 401
    with pytest.raises(InvalidTokenError):
        twin.authenticate(server, bearer(raw))  # the refusal is cached too
    assert introspections(provider) == asked + 1


def test_token_for_another_resource_is_refused_by_audience(provider: Provider, twin: Twin) -> None:
    # Active at the provider, but issued for another API: `aud` in the answer decides.
    config = introspection(provider, INTROSPECTORS[0], audience=RS256_API)
    server = ResourceServer(introspection=config)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(provider.token(BASIC, OPAQUE_API)))
    assert info.value.reason is Reason.AUDIENCE


def test_wrong_introspection_credentials_are_503_and_logged(
    provider: Provider, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    # The provider answers 401 invalid_client: our configuration is wrong, not the client's token.
    wrong = Client(INTROSPECTORS[0].client_id, "client_secret_basic", grant_types=())
    server = ResourceServer(introspection=introspection(provider, wrong, discovered=False))
    raw = provider.token(BASIC, OPAQUE_API)
    with (
        caplog.at_level(logging.ERROR, logger="bearerguard"),
        pytest.raises(UpstreamUnavailableError) as info,
    ):
        twin.authenticate(server, bearer(raw))
    assert info.value.status_code == 503
    assert wrong.client_id in caplog.text
    assert wrong.client_secret not in caplog.text and raw not in caplog.text


def test_jwt_the_provider_will_not_introspect_is_refused(provider: Provider, twin: Twin) -> None:
    # With no Issuer to verify it locally, a JWT is refused without asking the AS; asked with
    # introspect_foreign_jwts, node-oidc-provider answers 400 unsupported_token_type for its
    # own JWTs (token-shapes §4): such a token cannot be accepted either way.
    token = provider.token(BASIC, RS256_API)
    asked = introspections(provider)
    server = ResourceServer(introspection=introspection(provider, INTROSPECTORS[0]))
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(token))
    assert info.value.reason is Reason.UNKNOWN_ISSUER
    assert introspections(provider) == asked
    config = introspection(provider, INTROSPECTORS[0], introspect_foreign_jwts=True)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(ResourceServer(introspection=config), bearer(token))
    assert info.value.reason is Reason.INACTIVE
    assert introspections(provider) == asked + 1


def test_introspect_jwts_cannot_work_with_this_provider(
    provider: Provider, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    # introspect_jwts asks the AS about every JWT it verified; this AS never introspects JWTs.
    # That is the operator's configuration, not the client's token: 503 and an ERROR log, so a
    # valid token is never blamed (the README says not to combine the two).
    issuer = Issuer(issuer=provider.issuer, audience=RS256_API)
    config = introspection(provider, INTROSPECTORS[0], introspect_jwts=True)
    server = ResourceServer(issuer, introspection=config)
    asked = introspections(provider)
    with (
        caplog.at_level(logging.ERROR, logger="bearerguard"),
        pytest.raises(UpstreamUnavailableError),
    ):
        twin.authenticate(server, bearer(provider.token(BASIC, RS256_API)))
    assert introspections(provider) == asked + 1
    assert "introspect_jwts cannot work" in caplog.text


@INTROSPECTOR_PAIRS
def test_mixed_mode_verifies_jwts_locally_and_introspects_opaque_tokens(
    provider: Provider, twin: Twin, introspector: Client, client: Client
) -> None:
    issuer = Issuer(issuer=provider.issuer, audience=RS256_API)
    server = ResourceServer(issuer, introspection=introspection(provider, introspector))
    asked, discovered = introspections(provider), discoveries(provider)

    jwt = twin.authenticate(server, bearer(provider.token(client, RS256_API)))
    assert (jwt.source, jwt.client_id) == ("jwt", client.client_id)
    assert jwt.scopes == {"orders.read", "orders.write"}
    # A JWT of the configured issuer for another API: refused locally, never introspected.
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(provider.token(client, ES256_API)))
    assert info.value.reason is Reason.AUDIENCE
    assert introspections(provider) == asked

    opaque = twin.authenticate(server, bearer(provider.token(client, OPAQUE_API)))
    assert (opaque.source, opaque.client_id) == ("introspection", client.client_id)
    assert opaque.scopes == {"orders.read", "orders.write"}
    assert introspections(provider) == asked + 1
    assert discoveries(provider) == discovered + 1  # the issuer's metadata, found once for both
