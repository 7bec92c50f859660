"""Requirements: all-of, any-of, their combinations, and opt-in wildcards; exact comparison."""

from __future__ import annotations

import pytest

from bearerguard import AccessToken, InsufficientScopeError, MissingTokenError, Requirement


def token(*scopes: str) -> AccessToken:
    return AccessToken(
        issuer="https://idp.test",
        subject="c",
        client_id="c",
        scopes=frozenset(scopes),
        claims={},
        expires_at=None,
    )


NEEDS = Requirement.of("orders.read") & (Requirement.of("eu") | Requirement.of("a", "b"))


@pytest.mark.parametrize(
    ("requirement", "scopes", "met"),
    [
        (Requirement.of("a"), {"a"}, True),
        (Requirement.of("a"), {"A"}, False),  # case-sensitive
        (Requirement.of("a"), {"a "}, False),  # exact
        (Requirement.of("a", "b"), {"a"}, False),
        (Requirement.of(any_of=["a", "b"]), {"b"}, True),
        (Requirement.of(any_of=["a", "b"]), {"c"}, False),
        (Requirement.of("a") | Requirement.of("b"), {"b"}, True),
        (Requirement.of("a") & Requirement.of("b"), {"b"}, False),
        (NEEDS, {"orders.read", "eu"}, True),
        (NEEDS, {"orders.read", "a", "b"}, True),
        (NEEDS, {"orders.read", "a"}, False),
        (NEEDS, {"eu", "a", "b"}, False),
        (Requirement.all(), set(), True),
        (Requirement.any(), {"a", "*"}, False),  # an empty "or" denies
        (Requirement.of("auth.clients.list"), {"auth.clients.*"}, False),  # wildcards opt-in
    ],
)
def test_requirements(requirement: Requirement, scopes: set[str], met: bool) -> None:
    assert requirement.met_by(frozenset(scopes)) is met
    if met:
        requirement.check(token(*scopes))
    else:
        with pytest.raises(InsufficientScopeError):
            requirement.check(token(*scopes))


@pytest.mark.parametrize(
    ("granted", "met"),
    [
        ("auth.clients.list", True),
        ("auth.clients.*", True),
        ("auth.*", True),
        ("auth.users.*", False),
        ("auth.clients", False),
        ("auth.clients.list.*", False),  # covers what lies below, not the name itself
        ("*", False),  # a bare star is never a wildcard
        ("Auth.*", False),
        ("auth.clients.lis*", False),
    ],
)
def test_wildcards_when_opted_in(granted: str, met: bool) -> None:
    requirement = Requirement.of("auth.clients.list", wildcards=True)
    assert requirement.met_by(frozenset({granted})) is met
    either = Requirement.of(any_of=["x", "auth.clients.list"], wildcards=True)
    assert either.met_by(frozenset({granted})) is met


def test_required_names_every_scope_of_a_composed_requirement() -> None:
    with pytest.raises(InsufficientScopeError) as info:
        NEEDS.check(token("orders.read"))
    assert info.value.required == ("a", "b", "eu", "orders.read")
    assert NEEDS.met_by(frozenset(info.value.required))  # a token with all of them passes
    assert NEEDS.scopes == {"orders.read", "eu", "a", "b"}


def test_optional_composes() -> None:
    optional = Requirement.of("a", optional=True)
    (optional | Requirement.of("b")).check(None)  # one alternative lets a tokenless request in
    with pytest.raises(MissingTokenError):
        (optional & Requirement.of("b")).check(None)
