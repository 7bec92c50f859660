"""Requirements naming DPoP, combined any way, against an independent oracle: `check` admits a
token exactly when the oracle does, refuses with the DPoP binding error exactly when binding
alone was missing, and `needs_dpop` is true only of requirements no bearer token can meet."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearerguard import InsufficientScopeError, Reason, Requirement
from bearerguard._errors import DPoPBindingError
from bearerguard.testing import access_token

NAMES = ("a", "b", "c")
SUBSETS = [frozenset(c) for n in range(4) for c in combinations(NAMES, n)]

leaves = st.builds(
    lambda all_of, any_of, dpop: Requirement.of(*all_of, any_of=any_of, dpop=dpop),
    st.frozensets(st.sampled_from(NAMES), max_size=2),
    st.frozensets(st.sampled_from(NAMES), max_size=2),
    st.sampled_from([None, "required"]),
)
requirements = st.recursive(
    leaves,
    lambda parts: st.one_of(
        st.lists(parts, max_size=3).map(lambda ps: Requirement.all(*ps)),
        st.lists(parts, max_size=3).map(lambda ps: Requirement.any(*ps)),
        st.tuples(parts, parts).map(lambda pair: pair[0] & pair[1]),
        st.tuples(parts, parts).map(lambda pair: pair[0] | pair[1]),
    ),
    max_leaves=6,
)


def oracle(requirement: Requirement, scopes: frozenset[str], bound: bool) -> bool:
    """What the requirement means, written out from its fields."""
    if requirement.dpop == "required" and not bound:
        return False
    if not requirement.all_of <= scopes:
        return False
    if requirement.any_of and not requirement.any_of & scopes:
        return False
    if not all(oracle(part, scopes, bound) for part in requirement.every):
        return False
    either = requirement.either
    return either is None or any(oracle(part, scopes, bound) for part in either)


def names_dpop(requirement: Requirement) -> bool:
    parts = (*requirement.every, *(requirement.either or ()))
    return requirement.dpop is not None or any(names_dpop(part) for part in parts)


@given(requirements, st.sampled_from(SUBSETS), st.booleans())
def test_check_matches_the_oracle(
    requirement: Requirement, scopes: frozenset[str], bound: bool
) -> None:
    token = access_token(scope=sorted(scopes), cnf={"jkt": "x" * 43} if bound else None)
    assert requirement.names_dpop == names_dpop(requirement)
    assert requirement.met_by(scopes, bound=bound) == oracle(requirement, scopes, bound)
    if oracle(requirement, scopes, bound):
        requirement.check(token)
        return
    with pytest.raises((DPoPBindingError, InsufficientScopeError)) as refused:
        requirement.check(token)
    if not bound and oracle(requirement, scopes, True):  # binding alone was missing
        assert type(refused.value) is DPoPBindingError
        assert refused.value.reason is Reason.DPOP_UNBOUND
    else:
        assert type(refused.value) is InsufficientScopeError


@given(requirements)
def test_needs_dpop_only_when_no_bearer_token_meets_it(requirement: Requirement) -> None:
    if requirement.needs_dpop:
        assert not any(oracle(requirement, scopes, False) for scopes in SUBSETS)
    elif not requirement.names_dpop:
        assert all(
            oracle(requirement, scopes, False) == oracle(requirement, scopes, True)
            for scopes in SUBSETS
        )


@pytest.mark.parametrize("cnf", [None, "jkt", ["jkt"], {"x5t#S256": "x"}, {}])
def test_only_a_cnf_object_with_jkt_is_bound(cnf: object) -> None:
    token = access_token(scope="a", cnf=cnf)
    with pytest.raises(DPoPBindingError):
        Requirement.of("a", dpop="required").check(token)
