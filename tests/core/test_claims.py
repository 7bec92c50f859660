from __future__ import annotations

import math
from typing import Any

import pytest

from bearerguard import InvalidTokenError, Reason
from bearerguard._claims import RFC9068_CLAIMS, ClaimsPolicy, check_claims, check_type

NOW = 1_700_000_000.0
ISS = "https://issuer.test"


def policy(**overrides: Any) -> ClaimsPolicy:
    fields: dict[str, Any] = {
        "issuer": ISS,
        "audiences": frozenset({"api://orders", "orders-client-id"}),
        "leeway": 30.0,
        "required": frozenset({"iss", "exp", "aud"}),
        "max_token_age": None,
    }
    return ClaimsPolicy(**(fields | overrides))


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"iss": ISS, "aud": "api://orders", "exp": NOW + 300, "iat": NOW - 10}
    return {k: v for k, v in (base | overrides).items() if v is not ...}


def refused(reason: Reason, token_claims: dict[str, Any], p: ClaimsPolicy | None = None) -> None:
    with pytest.raises(InvalidTokenError) as info:
        check_claims(token_claims, p or policy(), NOW)
    assert info.value.reason is reason


def test_claims_valid_token_returns_exp_as_deadline() -> None:
    assert check_claims(claims(), policy(), NOW) == NOW + 300


@pytest.mark.parametrize("aud", ["api://orders", ["other", "orders-client-id"], ["api://orders"]])
def test_claims_audience_string_or_array_matches_any_configured(aud: Any) -> None:
    assert check_claims(claims(aud=aud), policy(), NOW) == NOW + 300  # accepted: exp deadline


@pytest.mark.parametrize("aud", ["api://other", ["a", "b"], []])
def test_claims_audience_not_ours(aud: Any) -> None:
    refused(Reason.AUDIENCE, claims(aud=aud))


@pytest.mark.parametrize("aud", [1, None, {"a": 1}, ["api://orders", 1], True])
def test_claims_audience_of_wrong_type(aud: Any) -> None:
    refused(Reason.CLAIM_TYPE, claims(aud=aud))


def test_claims_audience_unchecked_when_policy_says_so_but_type_still_checked() -> None:
    open_policy = policy(audiences=None, required=frozenset({"iss", "exp"}))
    assert check_claims(claims(aud="anything"), open_policy, NOW) == NOW + 300
    assert check_claims(claims(aud=...), open_policy, NOW) == NOW + 300
    refused(Reason.CLAIM_TYPE, claims(aud=5), open_policy)


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "value", ["1700000000", True, False, None, [1], {"t": 1}, math.inf, -math.inf, -(10**400)]
)
def test_claims_times_must_be_numbers(name: str, value: Any) -> None:
    refused(Reason.CLAIM_TYPE, claims(**{name: value}))


def test_claims_exp_with_leeway() -> None:
    check_claims(claims(exp=NOW - 29), policy(), NOW)  # inside the 30 s leeway
    refused(Reason.EXPIRED, claims(exp=NOW - 30))
    refused(Reason.EXPIRED, claims(exp=NOW - 3600))
    check_claims(claims(exp=NOW + 0.5), policy(leeway=0.0), NOW)
    refused(Reason.EXPIRED, claims(exp=NOW), policy(leeway=0.0))  # RFC 7519: before exp


def test_claims_nbf_with_leeway() -> None:
    check_claims(claims(nbf=NOW + 30), policy(), NOW)
    refused(Reason.NOT_YET_VALID, claims(nbf=NOW + 31))


def test_claims_iat_in_the_future() -> None:
    check_claims(claims(iat=NOW + 30), policy(), NOW)
    refused(Reason.ISSUED_IN_FUTURE, claims(iat=NOW + 31))


def test_claims_max_token_age() -> None:
    aged = policy(max_token_age=600.0)
    assert check_claims(claims(iat=NOW - 100, exp=NOW + 3600), aged, NOW) == NOW + 500
    check_claims(claims(iat=NOW - 629), aged, NOW)  # 600 s plus the leeway
    refused(Reason.TOO_OLD, claims(iat=NOW - 631), aged)
    refused(Reason.MISSING_CLAIM, claims(iat=...), aged)


def test_claims_exp_required_by_default_optional_by_choice() -> None:
    refused(Reason.MISSING_CLAIM, claims(exp=...))
    no_exp = policy(required=frozenset({"iss", "aud"}))
    assert check_claims(claims(exp=...), no_exp, NOW) == math.inf


def test_claims_iss_must_match_exactly() -> None:
    refused(Reason.UNKNOWN_ISSUER, claims(iss=ISS + "/"))
    refused(Reason.UNKNOWN_ISSUER, claims(iss=ISS.upper()))


@pytest.mark.parametrize(("name", "value"), [("sub", 1), ("jti", ["x"])])
def test_claims_sub_and_jti_must_be_strings(name: str, value: Any) -> None:
    refused(Reason.CLAIM_TYPE, claims(**{name: value}))


def test_claims_rfc9068_requires_its_claims() -> None:
    profile = policy(required=frozenset(RFC9068_CLAIMS))
    full = claims(sub="c1", client_id="c1", jti="j1")
    check_claims(full, profile, NOW)
    for name in sorted(RFC9068_CLAIMS):
        refused(Reason.MISSING_CLAIM, {k: v for k, v in full.items() if k != name}, profile)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_type_rfc9068_accepts_at_jwt(typ: str) -> None:
    check_type({"typ": typ}, rfc9068=True)


@pytest.mark.parametrize("header", [{"typ": "JWT"}, {}, {"typ": "id_token+jwt"}])
def test_type_rfc9068_refuses_other_types(header: dict[str, Any]) -> None:
    with pytest.raises(InvalidTokenError) as info:
        check_type(header, rfc9068=True)
    assert info.value.reason is Reason.TYPE
    check_type(header, rfc9068=False)


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
def test_claims_integer_beyond_float_range_is_refused_not_a_crash(name: str) -> None:
    refused(Reason.CLAIM_TYPE, claims(**{name: 10**400}))
