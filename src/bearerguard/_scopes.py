"""Scopes: reading them from a token's claims, and the requirements routes declare.

Scope comparison is exact and case-sensitive (RFC 6749 §3.3). A scope claim is a space-separated
string or an array of strings; anything else refuses the token rather than being coerced.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ._errors import (
    ConfigurationError,
    DPoPBindingError,
    InsufficientScopeError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
)
from ._token import AccessToken
from ._validate import strings

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


def read_scopes(
    claims: Mapping[str, Any], claim_names: Iterable[str], sets: ScopeSets | None = None
) -> frozenset[str]:
    """The union of the scopes found in `claim_names`; absent claims contribute nothing.

    With `sets`, a space-separated claim seen before gives the set built for it then.
    """
    scopes: frozenset[str] | None = None
    for name in claim_names:
        value = claims.get(name)  # the usual case: a plain name; else a dotted path
        if value is None and "." in name:
            value = claim_at(claims, name)
        if value is None:
            continue
        if isinstance(value, str):
            found: Iterable[str] = frozenset(value.split()) if sets is None else sets.of(value)
        elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            found = value
        else:
            raise InvalidTokenError(Reason.CLAIM_TYPE)
        scopes = frozenset(found) if scopes is None else scopes.union(found)
    return _NO_SCOPES if scopes is None else scopes


_NO_SCOPES: frozenset[str] = frozenset()


class ScopeSets:
    """Scope sets by the text of the scope claim, shared by every token that carries that text.

    A client's tokens carry the same scope claim, token after token: its set is split and hashed
    once, not per token (~70 µs for 1000 scopes), and held once in memory. Bounded by the claim
    text it holds (`max_chars`); when that is reached it starts over. It only ever sees claims
    of tokens whose signature (or introspection answer) was already accepted.
    """

    def __init__(self, max_chars: int = 1 << 20) -> None:
        self._sets: dict[str, frozenset[str]] = {}
        self._chars = 0
        self._max_chars = max_chars
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sets)

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()
            self._chars = 0

    def of(self, claim: str) -> frozenset[str]:
        """`frozenset(claim.split())`, the same object for the same text while it is held."""
        scopes = self._sets.get(claim)  # no lock to read: a dict lookup is atomic
        if scopes is None:
            scopes = frozenset(claim.split())
            if len(claim) <= self._max_chars:
                with self._lock:
                    if self._chars + len(claim) > self._max_chars:
                        self._sets.clear()
                        self._chars = 0
                    self._sets[claim] = scopes
                    self._chars += len(claim)
        return scopes


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route needs: every scope of `all_of`, and at least one of `any_of` if given.

    Requirements combine: `a & b` needs both, `a | b` needs either (`Requirement.all(...)` and
    `Requirement.any(...)` for many); the parts of a combination are in `every` and `either`
    (None there means no alternatives, and an empty tuple alternatives of which none is met).
    Comparison is exact and case-sensitive. `wildcards=True` opts in to hierarchical grants:
    a granted `auth.clients.*` then satisfies `auth.clients.list` (and anything below
    `auth.clients.`); a bare `*` is never a wildcard. `optional=True` lets a request without a
    token through (the route sees no token); a token that is sent must still meet the scopes.
    `dpop="required"` asks for a DPoP-bound token (RFC 9449) on a server that also accepts
    bearer tokens (`ResourceServer(dpop="allowed")`): a token without `cnf.jkt` is refused with a
    401 and the DPoP challenge. A route can only tighten the server's rule, so `"required"` is
    the one value (None: the server's rule); in a combination it holds for its own part.

    Example::

        Requirement.of("orders.read") | Requirement.of("admin")
        Requirement.of("payments.write", dpop="required")
    """

    all_of: frozenset[str] = frozenset()
    any_of: frozenset[str] = frozenset()
    optional: bool = False
    every: tuple[Requirement, ...] = ()
    either: tuple[Requirement, ...] | None = None  # None: no alternatives; (): none is met
    wildcards: bool = False
    dpop: Literal["required"] | None = None
    # Does this requirement or a part name DPoP? Only then is a token's binding looked at.
    _dpop_named: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Scopes given as anything but a frozenset of non-empty strings (a set, a list, a bare
        # string by mistake, which would be a set of characters) go through `strings`.
        for name in ("all_of", "any_of"):
            value = getattr(self, name)
            if type(value) is frozenset:
                for scope in value:  # a loop, not all(): this runs per FastAPI request
                    if type(scope) is not str or not scope:
                        break
                else:
                    continue
            object.__setattr__(self, name, frozenset(strings(value, name)))
        parts = (*self.every, *(self.either or ()))
        if parts:
            _parts(parts)
        if self.dpop is not None and self.dpop != "required":
            raise ConfigurationError(
                f'a route can only tighten the server\'s DPoP rule: dpop="required" or None, '
                f"got {self.dpop!r}",
                field="dpop",
            )
        if self.dpop is not None or any(part._dpop_named for part in parts):
            object.__setattr__(self, "_dpop_named", True)

    @classmethod
    def of(
        cls,
        *all_of: str,
        any_of: Iterable[str] = (),
        optional: bool = False,
        wildcards: bool = False,
        dpop: Literal["required"] | None = None,
    ) -> Requirement:
        scopes = frozenset(strings(all_of, "all_of"))  # a list given as one scope is refused
        any_of = frozenset(strings(any_of, "any_of"))
        return cls(scopes, any_of, optional, wildcards=wildcards, dpop=dpop)

    @classmethod
    def all(cls, *parts: Requirement) -> Requirement:
        """Every one of `parts`; optional only if every part is."""
        return cls(optional=all(p.optional for p in _parts(parts)), every=parts)

    @classmethod
    def any(cls, *parts: Requirement) -> Requirement:
        """At least one of `parts`; optional if any part is (a tokenless request meets it).

        With no parts, nothing meets it: `Requirement.any()` denies every token (403 naming
        no scope), as an empty "or" is false.
        """
        return cls(optional=any(p.optional for p in _parts(parts)), either=parts)

    def __and__(self, other: Requirement) -> Requirement:
        return Requirement.all(self, other)

    def __or__(self, other: Requirement) -> Requirement:
        return Requirement.any(self, other)

    @property
    def scopes(self) -> frozenset[str]:
        """Every scope this requirement names (for OpenAPI and RFC 9728 `scopes_supported`)."""
        named = self.all_of | self.any_of
        for part in (*self.every, *(self.either or ())):
            named |= part.scopes
        return named

    @property
    def names_dpop(self) -> bool:
        """Does this requirement, or one of its parts, ask for a DPoP-bound token?"""
        return self._dpop_named

    @property
    def needs_dpop(self) -> bool:
        """Can only a DPoP-bound token meet it? (It, one of its `every` parts, or each of its
        alternatives asks for one.)"""
        if self.dpop is not None or any(part.needs_dpop for part in self.every):
            return True
        return bool(self.either) and all(part.needs_dpop for part in self.either or ())

    def met_by(self, scopes: frozenset[str], bound: bool = False) -> bool:
        """True if a token granting `scopes` meets the requirement; `bound` says whether it is
        DPoP-bound (`cnf.jkt`, checked against the request's proof by the server)."""
        if self.dpop is not None and not bound:
            return False
        if self.wildcards:
            if not all(_granted_by(scopes, s) for s in self.all_of) or (
                self.any_of and not any(_granted_by(scopes, s) for s in self.any_of)
            ):
                return False
        elif not self.all_of <= scopes or (self.any_of and self.any_of.isdisjoint(scopes)):
            return False  # the common case: two set operations
        if self.every and not all(part.met_by(scopes, bound) for part in self.every):
            return False
        return self.either is None or any(part.met_by(scopes, bound) for part in self.either)

    def check(self, token: AccessToken | None) -> None:
        """Raise the RFC 6750 refusal if `token` does not meet the requirement.

        `InsufficientScopeError.required` is every scope the requirement names, not only the
        missing ones: RFC 6750 §3 `scope` is the scope a token needs for the resource, and a
        token carrying exactly that meets the requirement (alternatives are all listed, since
        the attribute cannot say "or"; requirements only ever ask for scopes, so a superset
        still meets them).

        A requirement naming DPoP reads the token's `cnf` claim: a token the scopes would let
        through but that is not DPoP-bound is refused with `DPoPBindingError`
        (`Reason.DPOP_UNBOUND`; `Guard.check` names the server's proof algorithms). Binding is
        only proven by a server with DPoP on (it checks the proof against `cnf.jkt`): the
        framework helpers refuse such a route on a server with `dpop="off"`.
        """
        if token is None:
            if self.optional:
                return
            raise MissingTokenError
        if not self._dpop_named:  # the common case: scopes alone
            if not self.met_by(token.scopes, False):
                raise InsufficientScopeError(self.scopes)
            return
        bound = is_dpop_bound(token)
        if not self.met_by(token.scopes, bound):
            if not bound and self.met_by(token.scopes, True):
                raise DPoPBindingError(Reason.DPOP_UNBOUND)  # the scopes were enough
            raise InsufficientScopeError(self.scopes)


def is_dpop_bound(token: AccessToken) -> bool:
    """Does `token` carry a DPoP confirmation (`cnf.jkt`, RFC 9449 §6)? With DPoP on, the server
    accepted it only with a proof signed by that key (and a bound token only with one)."""
    # A token marked unbound as it was verified has no claims to read.
    cnf = token.claims.get("cnf") if getattr(token, "_bound", True) else None
    if cnf is None:
        return False
    # The claims' own mapping types first: an ABC `isinstance` costs ~0.2 µs.
    return (type(cnf) in _MAPPINGS or isinstance(cnf, Mapping)) and "jkt" in cnf


_MAPPINGS = (dict, MappingProxyType)


def _parts(parts: tuple[object, ...]) -> tuple[Requirement, ...]:
    """`parts` if every one is a `Requirement` (`Requirement.all("a")` is a mistake)."""
    for part in parts:
        if not isinstance(part, Requirement):
            raise ConfigurationError(
                f"requirements combine Requirements, not {part!r}", field="requirement"
            )
    return parts  # type: ignore[return-value]  # every part was checked above


def _granted_by(scopes: frozenset[str], scope: str) -> bool:
    """`scope` itself, or a wildcard `<prefix>.*` over one of its dotted prefixes, is granted."""
    if scope in scopes:
        return True
    dot = scope.find(".")
    while dot > 0:
        if scope[: dot + 1] + "*" in scopes:
            return True
        dot = scope.find(".", dot + 1)
    return False
