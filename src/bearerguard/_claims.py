"""Checks of the registered claims (RFC 7519 §4.1) and the RFC 9068 access-token profile.

Pure functions of the claims, a policy and the current time. Every check that can be configured is
strict by default: `exp` is required, times must be JSON numbers, and `aud` must name this resource.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name, _ABSENT)
    if value is _ABSENT:
        return None
    # bool is an int in Python but not a number in JSON; NaN never reaches here (see _jose), but
    # a huge literal such as 1e999 decodes to infinity.
    if isinstance(value, bool) or not isinstance(value, _NUMBERS) or math.isinf(value):
        raise InvalidTokenError(Reason.CLAIM_TYPE)
    return float(value)


_ABSENT: Any = object()
_NUMBERS = (int, float)


def audiences(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The `aud` claim as a tuple: a single string or an array of strings (RFC 7519 §4.1.3)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list | tuple) and all(isinstance(item, str) for item in aud):
        return tuple(aud)
    raise InvalidTokenError(Reason.CLAIM_TYPE)


def check_claims(claims: Mapping[str, Any], policy: ClaimsPolicy, now: float) -> float:
    """Check the registered claims; return the time after which the token must not be served.

    The returned deadline is `exp` itself (without leeway), or `iat + max_token_age` if earlier, or
    infinity for a token without `exp` that the policy allows.
    """
    if not claims.keys() >= policy.required:  # one C-level pass over the required names
        raise InvalidTokenError(Reason.MISSING_CLAIM)
    if claims.get("iss") != policy.issuer:
        raise InvalidTokenError(Reason.UNKNOWN_ISSUER)
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise InvalidTokenError(Reason.CLAIM_TYPE)
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise InvalidTokenError(Reason.CLAIM_TYPE)
    if "aud" in claims or policy.audiences is not None:
        if "aud" not in claims:
            raise InvalidTokenError(Reason.MISSING_CLAIM)
        token_audiences = audiences(claims)
        if policy.audiences is not None and policy.audiences.isdisjoint(token_audiences):
            raise InvalidTokenError(Reason.AUDIENCE)

    exp, nbf, iat = _number(claims, "exp"), _number(claims, "nbf"), _number(claims, "iat")
    leeway = policy.leeway
    if exp is not None and now >= exp + leeway:
        raise InvalidTokenError(Reason.EXPIRED)
    if nbf is not None and now + leeway < nbf:
        raise InvalidTokenError(Reason.NOT_YET_VALID)
    if iat is not None and now + leeway < iat:
        raise InvalidTokenError(Reason.ISSUED_IN_FUTURE)
    deadline = math.inf if exp is None else exp
    if policy.max_token_age is not None:
        if iat is None:
            raise InvalidTokenError(Reason.MISSING_CLAIM)
        if now - leeway > iat + policy.max_token_age:
            raise InvalidTokenError(Reason.TOO_OLD)
        deadline = min(deadline, iat + policy.max_token_age)
    return deadline


def check_type(header: Mapping[str, Any], *, rfc9068: bool) -> None:
    """In RFC 9068 mode, the header's `typ` must say "at+jwt" (RFC 9068 §4, RFC 8725 §3.11)."""
    if rfc9068 and str(header.get("typ", "")).lower() not in RFC9068_TYPES:
        raise InvalidTokenError(Reason.TYPE)
