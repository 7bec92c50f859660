"""A JWT verified on the request path keeps its claims undecoded until `claims` is first read:
the cached token holds the token string the cache keys by, and decodes it once, on demand, with
the same result as the checks read on the miss. Tokens of one client share their subject and
client id strings, and a cached token's deadline shares its `expires_at`."""

from __future__ import annotations

import base64
import dataclasses
import json
from types import MappingProxyType
from typing import Any

import pytest

from bearerguard import AccessToken, Issuer, ResourceServer
from bearerguard._b64json import payload_claims
from bearerguard._jose import parse
from bearerguard._token import _get_claims, freeze, with_scopes
from bearerguard.testing import LocalIssuer

AUDIENCE = "api://orders"
ISSUER = "https://idp.example.test"


@pytest.fixture(scope="module")
def minting() -> LocalIssuer:
    return LocalIssuer(algorithms=("HS256",), audience=AUDIENCE)  # minting needs no server


@pytest.fixture
def server(minting: LocalIssuer) -> ResourceServer:
    secret = minting.shared_secret()
    return ResourceServer(
        Issuer(issuer=ISSUER, audience=AUDIENCE, algorithms=["HS256"], shared_secret=secret)
    )


def _mint(minting: LocalIssuer, **claims: Any) -> str:
    return minting.mint(issuer=ISSUER, alg="HS256", scope="orders.read", **claims)


def test_a_verified_jwt_keeps_the_token_until_its_claims_are_read(
    minting: LocalIssuer, server: ResourceServer
) -> None:
    token = _mint(minting, tid="tenant-1", roles=["a", "b"])
    access = server.verify(token)
    assert _get_claims(access, AccessToken) is token  # the cache's key itself: no copy
    assert server.verify(token) is access  # a hit: still undecoded
    assert _get_claims(access, AccessToken) is token
    claims = access.claims
    assert isinstance(claims, MappingProxyType)
    assert claims["tid"] == "tenant-1" and claims["roles"] == ("a", "b")  # arrays are tuples
    assert dict(claims) == dict(parse(token).claims) | {"roles": ("a", "b")}
    assert access.claims is claims  # decoded once, then kept
    assert _get_claims(access, AccessToken) is claims
    with pytest.raises(TypeError):
        claims["tid"] = "other"


def test_an_undecoded_token_compares_copies_and_rescopes_like_a_decoded_one(
    minting: LocalIssuer, server: ResourceServer
) -> None:
    token = _mint(minting)
    access = server.verify(token)
    rescoped = with_scopes(access, frozenset({"x"}))
    assert _get_claims(rescoped, AccessToken) is token  # role resolution decodes nothing
    decoded = AccessToken(
        issuer=access.issuer,
        subject=access.subject,
        client_id=access.client_id,
        scopes=access.scopes,
        claims=freeze(dict(parse(token).claims)),
        expires_at=access.expires_at,
        source="jwt",
    )
    assert access == decoded and dataclasses.replace(access) == decoded
    assert rescoped.claims == access.claims and rescoped.scopes == frozenset({"x"})
    assert "claims" not in repr(access)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"iss":"I","sub":"s","aud":"A","exp":9999999999}',
        b' {"iss" : "I", "sub":"s\\u00e9\\n", "aud":["A","B"], "exp":9999999999} ',
        b'{"iss":"I","aud":"A","exp":9999999999,"n":{"deep":[1,[2,{"x":null}]]},"f":1.5e3}',
        '{"iss":"I","aud":"A","exp":9999999999,"name":"Zoë 東京"}'.encode(),
    ],
)
def test_decoding_again_gives_what_the_checks_read(payload: bytes) -> None:
    # Whitespace the strict parser allows, escapes, nesting, numbers, non-ASCII text.
    segment = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    token = f"eyJhbGciOiJIUzI1NiJ9.{segment}.c2ln"
    parsed = parse(token)
    decoded = payload_claims(token)
    assert isinstance(decoded, MappingProxyType)
    assert _thawed(decoded) == json.loads(payload) == parsed.claims


def test_tokens_of_one_client_share_their_identifiers_and_a_deadline_its_expiry(
    minting: LocalIssuer, server: ResourceServer
) -> None:
    first = server.verify(_mint(minting))
    second = server.verify(_mint(minting))
    assert first.subject == second.subject and first.subject is second.subject
    assert first.client_id is second.client_id
    assert first._deadline is first.expires_at  # one float object, not two
    # Decoded, their claims share names and the values the client repeats; not `jti`.
    names = {name: name for name in first.claims}
    assert all(names[name] is name for name in second.claims)
    assert first.claims["aud"] is second.claims["aud"]
    assert first.claims["jti"] != second.claims["jti"]


def _thawed(value: Any) -> Any:
    if isinstance(value, MappingProxyType):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value
