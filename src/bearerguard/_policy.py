"""A policy table: (methods, path pattern) → `Requirement`, checked by the middleware itself.

The path the table judges must be the path the router will route: the middleware refuses a path
that is not in normal form before the table sees it (`_urls.normal_path`). Nothing is
case-folded (routers are case-sensitive), and every pattern must match the whole path
(`re.fullmatch`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ._errors import ConfigurationError
from ._scopes import Requirement
from ._validate import strings

# What an unmatched path under a protected prefix gets: 403 insufficient_scope naming no scope
# (RFC 6750 §3.1: the token is fine, this resource needs more than any token can hold here).
DENY = Requirement.any()


def _methods(methods: Iterable[str] | str | None) -> frozenset[str] | None:
    if methods is None:
        return None
    names = frozenset(m.upper() for m in strings(methods, "methods", one=True))
    # Routers answer HEAD with the GET route (Starlette, Flask): the table follows them.
    return names | {"HEAD"} if "GET" in names else names


def _compile(pattern: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise ConfigurationError(f"policy pattern {pattern!r} must be a string", field="policy")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"policy pattern {pattern!r}: {exc}", field="policy") from exc


@dataclass(frozen=True, slots=True)
class Rule:
    """Requests whose method is in `methods` (None: any) and whose path fully matches the
    regular expression `pattern` need `requirement`.

    Example::

        Rule(r"/orders(/\\d+)?", Requirement.of("orders.read"), methods=["GET"])
    """

    pattern: str
    requirement: Requirement
    methods: Iterable[str] | str | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _requirement(self.requirement, "requirement")
        object.__setattr__(self, "methods", _methods(self.methods))
        object.__setattr__(self, "_regex", _compile(self.pattern))

    def requirement_for(self, method: str, path: str) -> Requirement | None:
        methods = self.methods
        if methods is not None and method not in methods:
            return None
        return self.requirement if self._regex.fullmatch(path) else None


# One entry of a scope's grants: a path regex (any method, or the mapping's `methods`), or a
# `(methods, path regex)` pair (CyberArk's "scope = REST regexes", per HTTP method).
Grant = str | tuple[str | Iterable[str], str]


def _requirement(value: Requirement, name: str) -> Requirement:
    if not isinstance(value, Requirement):
        raise ConfigurationError(
            f"policy {name} must be a Requirement (Requirement.of(...)), not {value!r}",
            field="policy",
        )
    return value


def _rules(rules: Iterable[Rule | ScopeGrants]) -> tuple[Rule | ScopeGrants, ...]:
    if isinstance(rules, Iterable) and not isinstance(rules, str | bytes):
        given = tuple(rules)
        if all(isinstance(rule, Rule | ScopeGrants) for rule in given):
            return given
    raise ConfigurationError("policy rules must be a list of Rules and ScopeGrants", field="policy")


class ScopeGrants:
    """CyberArk's model: each scope names the REST path regexes it grants.

    An entry is a path regex, granting every method (or those of `methods`, the default for
    entries that name none), or a `(methods, path regex)` pair granting only those methods. A
    request matched by the entries of several scopes needs any one of them; a request matched by
    none is not covered here (the table's next rule, or its default, decides).

    Example::

        ScopeGrants({
            "orders.read": [("GET", r"/orders(/.*)?")],
            "orders.write": [(["POST", "PUT"], r"/orders(/.*)?")],
            "admin": [r".*"],
        })
    """

    def __init__(
        self, grants: Mapping[str, Iterable[Grant]], *, methods: Iterable[str] | None = None
    ) -> None:
        if not isinstance(grants, Mapping):
            raise ConfigurationError("grants must map scopes to path regexes", field="grants")
        default = _methods(methods)
        self.grants = tuple(
            (scope, tuple(_grant(e, default, scope) for e in _entries(grants[scope], scope)))
            for scope in strings(tuple(grants), "grants")
        )
        self.methods = default

    def requirement_for(self, method: str, path: str) -> Requirement | None:
        scopes = []
        for scope, entries in self.grants:  # loops, not any(): no generator per request
            for methods, regex in entries:
                if (methods is None or method in methods) and regex.fullmatch(path):
                    scopes.append(scope)
                    break
        return Requirement.of(any_of=scopes) if scopes else None


def _entries(value: Iterable[Grant], scope: str) -> tuple[Grant, ...]:
    if isinstance(value, _TEXT) or not isinstance(value, Iterable):  # not letter by letter
        raise ConfigurationError(
            f"{scope}: grants must be a list of path regexes or (methods, regex) pairs",
            field="grants",
        )
    return tuple(value)


def _grant(
    entry: Grant, default: frozenset[str] | None, scope: str
) -> tuple[frozenset[str] | None, re.Pattern[str]]:
    methods, pattern = default, entry
    if type(entry) is tuple and len(entry) == 2:
        methods, pattern = _methods(entry[0]), entry[1]
    if not isinstance(pattern, str) or not pattern:
        raise ConfigurationError(
            f"{scope}: grants hold path regexes or (methods, regex) pairs, not {entry!r}",
            field="grants",
        )
    return methods, _compile(pattern)


_TEXT = (str, bytes, bytearray, memoryview)


class PolicyTable:
    """Which requirement each request needs, decided before the app runs; first match wins.

    `rules` are `Rule`s and `ScopeGrants`, tried in order. A path that no rule matches is
    denied (401 without a token, else 403 `insufficient_scope` naming no scope) if it lies
    under one of the `protect` prefixes (default: everything), or needs `default` if given;
    outside them it needs only a valid token. Paths not in normal form are refused with 400.

    Example::

        PolicyTable([
            Rule(r"/orders(/.*)?", Requirement.of("orders.read"), methods=["GET"]),
            Rule(r"/orders(/.*)?", Requirement.of("orders.write"), methods=["POST"]),
        ])
    """

    def __init__(
        self,
        rules: Iterable[Rule | ScopeGrants],
        *,
        protect: str | Iterable[str] = "/",
        default: Requirement = DENY,
    ) -> None:
        self.rules = _rules(rules)
        prefixes = strings(protect, "protect", one=True)
        if not all(p.startswith("/") for p in prefixes):
            raise ConfigurationError("protect prefixes must start with '/'", field="policy")
        self.protect = tuple(p.rstrip("/") for p in prefixes)
        self.default = _requirement(default, "default")

    @classmethod
    def from_scopes(
        cls,
        grants: Mapping[str, Iterable[Grant]],
        *,
        methods: Iterable[str] | None = None,
        **options: object,
    ) -> PolicyTable:
        """A table of one `ScopeGrants` (scope → path regexes, or `(methods, regex)` pairs);
        `methods` as for `ScopeGrants`, other options as for the class."""
        return cls([ScopeGrants(grants, methods=methods)], **options)  # type: ignore[arg-type]

    def requirement_for(self, method: str, path: str) -> Requirement | None:
        """The requirement of a request, or None if the table does not cover its path."""
        for rule in self.rules:
            if (requirement := rule.requirement_for(method, path)) is not None:
                return requirement
        if any(path == p or path.startswith(p + "/") for p in self.protect):
            return self.default
        return None

    @property
    def names_dpop(self) -> bool:
        """Does a requirement of the table ask for a DPoP-bound token (`dpop="required"`)?"""
        rules = (rule.requirement for rule in self.rules if isinstance(rule, Rule))
        return any(requirement.names_dpop for requirement in (self.default, *rules))

    @property
    def scopes(self) -> frozenset[str]:
        """Every scope the table names (for RFC 9728 `scopes_supported`)."""
        named = self.default.scopes
        for rule in self.rules:
            if isinstance(rule, Rule):
                named |= rule.requirement.scopes
            else:
                named |= {scope for scope, _ in rule.grants}
        return named
