"""Scopes: reading them from a token's claims, and the requirements routes declare.

Scope comparison is exact and case-sensitive (RFC 6749 §3.3). A scope claim is a space-separated
string or an array of strings; anything else refuses the token rather than being coerced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import InsufficientScopeError, InvalidTokenError, MissingTokenError, Reason
from ._token import AccessToken

DEFAULT_SCOPE_CLAIMS = ("scope", "scp")


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (`realm_access.roles`).

    A claim whose own name contains dots (URL-named claims) is found by its name first.
    """
    if path in claims:
        return claims[path]
    if "." not in path:
        return None
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def read_scopes(claims: Mapping[str, Any], claim_names: Iterable[str]) -> frozenset[str]:
    """The union of the scopes found in `claim_names`; absent claims contribute nothing."""
    found: list[Iterable[str]] = []
    for name in claim_names:
        value = claim_at(claims, name)
        if value is None:
            continue
        if isinstance(value, str):
            found.append(value.split())
        elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            found.append(value)
        else:
            raise InvalidTokenError(Reason.CLAIM_TYPE)
    return frozenset().union(*found)  # one set built, not a set and then its frozen copy


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route needs: every scope of `all_of`, and at least one of `any_of` if given.

    `optional=True` lets a request without a token through (the route sees no token); a token
    that is sent must still meet the scopes.
    """

    all_of: frozenset[str] = frozenset()
    any_of: frozenset[str] = frozenset()
    optional: bool = False

    @classmethod
    def of(cls, *all_of: str, any_of: Iterable[str] = (), optional: bool = False) -> Requirement:
        return cls(frozenset(all_of), frozenset(any_of), optional)

    @property
    def scopes(self) -> frozenset[str]:
        """Every scope this requirement names (for OpenAPI and RFC 9728 `scopes_supported`)."""
        return self.all_of | self.any_of

    def check(self, token: AccessToken | None) -> None:
        """Raise the RFC 6750 refusal if `token` does not meet the requirement.

        `InsufficientScopeError.required` is every scope the requirement names, not only the
        missing ones: RFC 6750 §3 `scope` is the scope a token needs for the resource, and a
        token carrying exactly that meets the requirement (an any-of lists its alternatives).
        """
        if token is None:
            if self.optional:
                return
            raise MissingTokenError
        if not self.all_of <= token.scopes or (
            self.any_of and self.any_of.isdisjoint(token.scopes)
        ):
            raise InsufficientScopeError(self.scopes)
