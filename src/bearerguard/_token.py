"""The access token a request was authenticated with: immutable, with read-only claims."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

# How deeply decoded JSON may nest, the outermost object counting 1: tokens, JWKS, metadata and
# introspection answers nest 2 to 5 deep. The one bound of the JSON parser (_jose, which refuses
# deeper JSON) and of `freeze` (which cannot go deeper). 64 is System.Text.Json's default too.
MAX_JSON_DEPTH = 64

# Where RFC 9068 and the issuers our users run put the client's id, in order of preference:
# RFC 9068 `client_id`, then `azp` (Entra v2, Auth0), `appid` (Entra v1), `cid` (Okta).
CLIENT_ID_CLAIMS = ("client_id", "azp", "appid", "cid")


class _CacheSlots:
    """What the verified-token cache keeps beside a token it holds (see `_cache.TokenCache`):
    the time after which it must not be served, and the JWKS, kid and key that verified it.

    Slots of the token itself rather than a tuple around it: a cached token is then one object
    the garbage collector tracks (beside its claims), not three. Not dataclass fields: they are
    not compared, shown, pickled or copied by `dataclasses.replace`, and only the cache sets and
    reads them.
    """

    __slots__ = ("_deadline", "_key", "_keys", "_kid")

    # Typed loosely here (`typing.get_type_hints(AccessToken)` must resolve without importing
    # the key modules); `TokenCache` reads them as `JWKSCache | None`, `str | None` and `Key`.
    _deadline: float
    _keys: Any
    _kid: Any
    _key: Any


@dataclass(frozen=True, slots=True)
class AccessToken(_CacheSlots):
    """A verified access token. `claims` is read-only; JSON arrays in it are tuples.

    Immutable; `dataclasses.replace` gives a changed copy.
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


def issued(
    *,
    issuer: str,
    subject: str | None,
    client_id: str | None,
    scopes: frozenset[str],
    claims: Mapping[str, Any],
    expires_at: float | None,
    source: Literal["jwt", "introspection"],
) -> AccessToken:
    """`AccessToken(...)` for the request path: the same object, built faster.

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
        claims=token.claims,
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


def freeze(value: Any, *, flat: bool = False) -> Any:
    """A read-only deep copy of decoded JSON: objects become mapping proxies, arrays tuples.

    `flat=True` says `value` is an object of scalars only (the parser can tell from the JSON
    text), so it is copied in one step without looking at its members. JSON nested deeper than
    the parser accepts (`MAX_JSON_DEPTH`) is a `ValueError`, never a `RecursionError`.
    """
    if flat:
        return MappingProxyType(value.copy())
    return _freeze(value)


def _level(deeper: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The freezer of one nesting level: `deeper` freezes the containers inside it."""

    def frozen(value: Any) -> Any:
        if isinstance(value, dict):
            if _SCALARS.issuperset(map(type, value.values())):
                return MappingProxyType(value.copy())  # the common flat object: one C-level pass
            return MappingProxyType(
                {k: deeper(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()}
            )
        if isinstance(value, list):
            return tuple(deeper(v) if isinstance(v, _CONTAINERS) else v for v in value)
        return value

    return frozen


def _deeper_than_allowed(value: Any) -> Any:
    raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} deep")


_CONTAINERS = (dict, list)
_SCALARS = frozenset({str, int, float, bool, type(None)})
# One freezer per nesting level, each calling the next, the last `_deeper_than_allowed`: it
# never goes deeper than the parser lets JSON nest, at no cost per call (a depth argument
# checked on every call cost ~20% of freezing a token with a few arrays).
_freeze: Callable[[Any], Any] = _deeper_than_allowed
for _ in range(MAX_JSON_DEPTH):
    _freeze = _level(_freeze)


def client_id_of(claims: Mapping[str, Any], names: Sequence[str] = CLIENT_ID_CLAIMS) -> str | None:
    """The client's id: the first of the claims `names` that holds a string (or a number)."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # some issuers send a numeric `azp`; an id, never a grant
    return None
