"""Requirements: all-of, any-of, their combinations, and opt-in wildcards; exact comparison."""

from __future__ import annotations

import pytest

from bearerguard import AccessToken, InsufficientScopeError, MissingTokenError, Requirement
from bearerguard._scopes import ScopeSets, read_scopes


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


def test_scope_sets_share_one_set_per_claim_text_within_a_bound() -> None:
    sets = ScopeSets(max_chars=20)
    first = sets.of("a b  c")
    assert first == {"a", "b", "c"}
    assert sets.of("a b  c") is first  # the same text: the same set, built once
    assert sets.of("c b a") == first and sets.of("c b a") is not first  # other text: its own
    assert len(sets) == 2  # 6 + 5 characters held
    sets.of("d" * 10)  # 21 characters would pass the bound: it starts over
    assert len(sets) == 1 and sets.of("a b  c") is not first
    assert sets.of("e" * 21) == {"e" * 21} and len(sets) == 2  # too long to hold: not held


def test_scope_sets_give_what_read_scopes_gives_without_them() -> None:
    sets = ScopeSets()
    for claims in (
        {"scope": "a b"},
        {"scope": "a b", "scp": ["c"]},
        {"scp": "x\ty  z"},
        {"scope": ""},
        {},
    ):
        assert read_scopes(claims, ("scope", "scp"), sets) == read_scopes(claims, ("scope", "scp"))
        assert read_scopes(claims, ("scope", "scp"), sets) == read_scopes(claims, ("scope", "scp"))
    assert len(sets) == 3  # "a b", "x\ty  z" and "": each string claim held once
    shared = read_scopes({"scope": "a b"}, ("scope",), sets)
    assert read_scopes({"scope": "a b"}, ("scope",), sets) is shared  # one claim: its set itself
