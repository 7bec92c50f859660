"""Checks of the registered claims (RFC 7519 §4.1) and the RFC 9068 access-token profile.

Pure functions of the claims, a policy and the current time. Every check that can be configured is
strict by default: `exp` is required, times must be JSON numbers, and `aud` must name this resource.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ._errors import InvalidTokenError, Reason

# RFC 9068 §2.2: the claims every JWT access token carries.
RFC9068_CLAIMS = frozenset({"iss", "exp", "aud", "sub", "client_id", "iat", "jti"})
# RFC 9068 §4: `typ` is "at+jwt"; media types are case-insensitive and may carry the prefix.
RFC9068_TYPES = frozenset({"at+jwt", "application/at+jwt"})


@dataclass(frozen=True, slots=True)
class ClaimsPolicy:
    """What the claims of one issuer's tokens must satisfy. Built from `Issuer`."""

    issuer: str
    audiences: frozenset[str] | None  # None: `aud` is not checked (an explicit choice)
    leeway: float
    required: frozenset[str]
    max_token_age: float | None
    values: tuple[tuple[str, frozenset[str]], ...] = ()  # claims that must hold one of these


def time_claim(claims: Mapping[str, Any], name: str) -> float | None:
    """A time claim (`exp`, `nbf`, `iat`) as seconds, None if absent; `CLAIM_TYPE` if no number."""
    value = claims.get(name, _ABSENT)
    # JSON numbers decode to exactly int or float: bool (an int in Python, not a number in JSON)
    # fails `type() is`. Integers are unbounded in Python: one of 1024 bits or more (10**400)
    # would overflow where it meets a float, so it is refused here. A float is finite: inf - inf
    # is NaN, and NaN never gets past _jose.
    kind = type(value)
    if kind is int:
        if value.bit_length() < 1024:
            return cast(int, value)
    elif kind is float:
        if value - value == 0.0:
            return cast(float, value)
    elif value is _ABSENT:
        return None
    raise InvalidTokenError(Reason.CLAIM_TYPE)


_ABSENT: Any = object()


def audiences(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The `aud` claim as a tuple: a single string or an array of strings (RFC 7519 §4.1.3)."""
    aud = claims.get("aud")
    if type(aud) is str:
        return (aud,)
    if isinstance(aud, list | tuple) and all(type(item) is str for item in aud):
        return tuple(aud)
    raise InvalidTokenError(Reason.CLAIM_TYPE)


def check_claims(claims: Mapping[str, Any], policy: ClaimsPolicy, now: float) -> float:
    """Check the registered claims; return the time after which the token must not be served.

    The steps below run in this order; `bearerguard check` calls the same steps one by one to
    report each. The returned deadline is `exp` itself (without leeway), or
    `iat + max_token_age` if earlier, or infinity for a token without `exp` that the policy
    allows.
    """
    check_required(claims, policy)
    check_issuer(claims, policy)
    check_audience(claims, policy)
    if policy.values:  # the steps that have nothing to check for most policies are not called
        check_values(claims, policy)
    exp = check_expiry(claims, policy.leeway, now)
    check_not_before(claims, policy.leeway, now)
    iat = check_issued_at(claims, policy.leeway, now)
    if policy.max_token_age is None:
        return math.inf if exp is None else exp  # what check_max_age returns then
    return check_max_age(exp, iat, policy, now)


def check_required(claims: Mapping[str, Any], policy: ClaimsPolicy) -> None:
    """Every required claim is present, and the identifiers `sub` and `jti` are strings."""
    if not claims.keys() >= policy.required:  # one C-level pass over the required names
        raise InvalidTokenError(Reason.MISSING_CLAIM)
    # A present `sub`/`jti` is a JSON string, so exactly `str`; absent ones read as "".
    if type(claims.get("sub", "")) is not str or type(claims.get("jti", "")) is not str:
        raise InvalidTokenError(Reason.CLAIM_TYPE)


def check_issuer(claims: Mapping[str, Any], policy: ClaimsPolicy) -> None:
    """`iss` is exactly the configured issuer (RFC 7519 §4.1.1; no normalisation)."""
    if claims.get("iss") != policy.issuer:
        raise InvalidTokenError(Reason.UNKNOWN_ISSUER)


def check_audience(claims: Mapping[str, Any], policy: ClaimsPolicy) -> None:
    """`aud` names one of the configured audiences; its type is checked even when unchecked."""
    aud = claims.get("aud", _ABSENT)
    if aud is _ABSENT:
        if policy.audiences is not None:
            raise InvalidTokenError(Reason.MISSING_CLAIM)
        return
    # One string is the usual `aud`: checked here; arrays (and wrong types) via `audiences`.
    token_audiences = (aud,) if type(aud) is str else audiences(claims)
    if policy.audiences is not None and policy.audiences.isdisjoint(token_audiences):
        raise InvalidTokenError(Reason.AUDIENCE)


def check_values(claims: Mapping[str, Any], policy: ClaimsPolicy) -> None:
    """Each claim of `Issuer.claim_values` is present and one of its allowed strings."""
    for name, allowed in policy.values:
        if name not in claims:
            raise InvalidTokenError(Reason.MISSING_CLAIM)
        value = claims[name]
        if not isinstance(value, str):
            raise InvalidTokenError(Reason.CLAIM_TYPE)
        if value not in allowed:
            raise InvalidTokenError(Reason.CLAIM_VALUE)


def check_expiry(claims: Mapping[str, Any], leeway: float, now: float) -> float | None:
    """The token is used before `exp` plus the leeway (RFC 7519 §4.1.4); returns `exp`."""
    exp = time_claim(claims, "exp")
    if exp is not None and now >= exp + leeway:
        raise InvalidTokenError(Reason.EXPIRED)
    return exp


def check_not_before(claims: Mapping[str, Any], leeway: float, now: float) -> None:
    """The token is not used before `nbf` minus the leeway (RFC 7519 §4.1.5)."""
    nbf = time_claim(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise InvalidTokenError(Reason.NOT_YET_VALID)


def check_issued_at(claims: Mapping[str, Any], leeway: float, now: float) -> float | None:
    """`iat` is not in the future beyond the leeway (RFC 7519 §4.1.6); returns `iat`."""
    iat = time_claim(claims, "iat")
    if iat is not None and now + leeway < iat:
        raise InvalidTokenError(Reason.ISSUED_IN_FUTURE)
    return iat


def check_times(
    claims: Mapping[str, Any], leeway: float, now: float
) -> tuple[float | None, float | None]:
    """`exp`, `nbf` and `iat` alone (introspection answers); returns `exp` and `iat`."""
    exp = check_expiry(claims, leeway, now)
    check_not_before(claims, leeway, now)
    return exp, check_issued_at(claims, leeway, now)


def check_max_age(exp: float | None, iat: float | None, policy: ClaimsPolicy, now: float) -> float:
    """The optional maximum age from `iat`; returns the deadline `check_claims` returns."""
    deadline = math.inf if exp is None else exp
    if policy.max_token_age is None:
        return deadline
    if iat is None:
        raise InvalidTokenError(Reason.MISSING_CLAIM)
    if now - policy.leeway > iat + policy.max_token_age:
        raise InvalidTokenError(Reason.TOO_OLD)
    return min(deadline, iat + policy.max_token_age)


def check_type(header: Mapping[str, Any], *, rfc9068: bool) -> None:
    """In RFC 9068 mode, the header's `typ` must say "at+jwt" (RFC 9068 §4, RFC 8725 §3.11)."""
    if rfc9068 and str(header.get("typ", "")).lower() not in RFC9068_TYPES:
        raise InvalidTokenError(Reason.TYPE)
