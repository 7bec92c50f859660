"""The access token a request was authenticated with: immutable, with read-only claims."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._b64json import payload_claims
from ._frozen import CLIENT_ID_CLAIMS, MAX_JSON_DEPTH, client_id_of, freeze

__all__ = [  # the claim helpers are `_frozen`'s; named here too, where callers look for them
    "CLIENT_ID_CLAIMS", "MAX_JSON_DEPTH", "AccessToken", "client_id_of", "freeze", "issued",
    "with_scopes",
]  # fmt: skip


class _CacheSlots:
    """What the verified-token cache keeps beside a token it holds (see `_cache.TokenCache`):
    the time after which it must not be served, the JWKS, kid and key that verified it, and
    whether it has a confirmation claim (`cnf`: bound to a DPoP key or a client certificate),
    so that a hit is judged without reading its claims.

    Slots of the token itself rather than a tuple around it: a cached token is then one object
    the garbage collector tracks (beside its claims), not three. Not dataclass fields: they are
    not compared, shown, pickled or copied by `dataclasses.replace`, and only the cache sets and
    reads them.
    """

    __slots__ = ("_bound", "_deadline", "_key", "_keys", "_kid")

    # Typed loosely here (`typing.get_type_hints(AccessToken)` must resolve without importing
    # the key modules); `TokenCache` reads them as `JWKSCache | None`, `str | None` and `Key`.
    _deadline: float
    _keys: Any
    _kid: Any
    _key: Any
    _bound: bool


@dataclass(frozen=True, slots=True)
class AccessToken(_CacheSlots):
    """A verified access token. `claims` is read-only; JSON arrays in it are tuples.

    Immutable; `dataclasses.replace` gives a changed copy. A JWT verified on the request path
    keeps its claims undecoded until `claims` is first read (see `_Claims`).
    """

    issuer: str
    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(repr=False)
    expires_at: float | None
    source: Literal["jwt", "introspection"] = "jwt"

    def has_scopes(self, *scopes: str) -> bool:
        """True if the token carries every one of `scopes` (exact, case-sensitive)."""
        return self.scopes.issuperset(scopes)


class _Claims:
    """`AccessToken.claims`: a read-only mapping, or, for a JWT the request path verified, the
    token itself until `claims` is first read, then decoded once and kept.

    A verified token in the cache then holds no decoded claims (~1.8 KB of a typical token's
    names, values and dicts) until a handler reads them: most requests read the fields
    (`subject`, `client_id`, `scopes`), never `claims`. The token string is the cache's key, so
    keeping it costs nothing. Decoding again gives exactly what the checks read on the miss:
    the same strict parser (`_jose`), the same bytes.
    """

    __slots__ = ("_slot",)

    def __init__(self, slot: Any) -> None:
        self._slot = slot  # the slot's own descriptor, which stores the value

    def __get__(self, token: AccessToken | None, owner: type | None = None) -> Any:
        if token is None:
            return self  # read on the class (dataclasses, typing)
        value = self._slot.__get__(token, owner)
        if type(value) is str:  # the verified JWT: decoded now, and kept
            value = payload_claims(value)
            self._slot.__set__(token, value)  # racing readers decode the same bytes
        return value

    def __set__(self, token: AccessToken, value: Any) -> None:
        self._slot.__set__(token, value)


def issued(
    *,
    issuer: str,
    subject: str | None,
    client_id: str | None,
    scopes: frozenset[str],
    claims: Mapping[str, Any] | str,
    expires_at: float | None,
    source: Literal["jwt", "introspection"],
) -> AccessToken:
    """`AccessToken(...)` for the request path: the same object, built faster. `claims` may be
    the JWT itself, verified: decoded when first read (see `_Claims`).

    A frozen dataclass's `__init__` sets each field with its own `object.__setattr__` call
    (~1.4 µs for seven fields); the slots' own setters are called here directly (~0.45 µs).
    """
    token = _new(AccessToken)
    _set_issuer(token, issuer)
    _set_subject(token, subject)
    _set_client_id(token, client_id)
    _set_scopes(token, scopes)
    _set_claims(token, claims)
    _set_expires_at(token, expires_at)
    _set_source(token, source)
    return token


def with_scopes(token: AccessToken, scopes: frozenset[str]) -> AccessToken:
    """`dataclasses.replace(token, scopes=scopes)`, at the cost of `issued` (not cached)."""
    return issued(
        issuer=token.issuer,
        subject=token.subject,
        client_id=token.client_id,
        scopes=scopes,
        claims=_get_claims(token, AccessToken),  # as kept: a JWT not yet decoded stays so
        expires_at=token.expires_at,
        source=token.source,
    )


_new = object.__new__
# The slot setters, which a frozen dataclass's `__setattr__` does not guard (`issued` names
# every field: a test checks).
(
    _set_issuer,
    _set_subject,
    _set_client_id,
    _set_scopes,
    _set_claims,
    _set_expires_at,
    _set_source,
) = (
    AccessToken.__dict__[name].__set__
    for name in ("issuer", "subject", "client_id", "scopes", "claims", "expires_at", "source")
)


# `claims` as stored (a JWT not decoded yet stays so), and then read through `_Claims`.
_get_claims = AccessToken.__dict__["claims"].__get__
AccessToken.claims = _Claims(AccessToken.__dict__["claims"])  # type: ignore[assignment,misc]
