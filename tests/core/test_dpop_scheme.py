"""The DPoP authorization scheme (RFC 9449 §7.1) beside Bearer: reading it, and the challenges."""

from __future__ import annotations

import pytest

from bearerguard import InvalidRequestError, MissingTokenError, challenge_for
from bearerguard._errors import DPoPMissingTokenError, InvalidDPoPProofError, Reason
from bearerguard._header import extract_credentials

BOTH = ("Bearer", "DPoP")


@pytest.mark.parametrize(
    ("header", "schemes", "expected"),
    [
        ("DPoP abc", BOTH, ("DPoP", "abc")),
        ("dpop a.b.c", BOTH, ("DPoP", "a.b.c")),  # case-insensitive, as Bearer
        ("DPOP   a-b_c~d+e/f==", ("DPoP",), ("DPoP", "a-b_c~d+e/f==")),
        ("bearer abc ", BOTH, ("Bearer", "abc")),
        ("Bearer abc", ("Bearer",), ("Bearer", "abc")),
    ],
)
def test_the_accepted_schemes_are_read(
    header: str, schemes: tuple[str, ...], expected: tuple[str, str]
) -> None:
    assert extract_credentials(header, schemes) == expected


@pytest.mark.parametrize(
    ("header", "schemes"),
    [
        (None, BOTH),
        ("Basic dTpw", BOTH),
        ("DPoP abc", ("Bearer",)),  # DPoP off: another scheme
        ("Bearer abc", ("DPoP",)),  # DPoP required: Bearer is another scheme
        ("DPoPabc", BOTH),
    ],
)
def test_other_schemes_are_no_credentials(header: str | None, schemes: tuple[str, ...]) -> None:
    with pytest.raises(MissingTokenError):
        extract_credentials(header, schemes)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("DPoP", Reason.MALFORMED_HEADER),
        ("DPoP a b", Reason.MALFORMED_HEADER),
        ("DPoP tök", Reason.MALFORMED_HEADER),
        ("DPoP\tabc", Reason.MALFORMED_HEADER),
        ("DPoP abc, Bearer def", Reason.MULTIPLE_CREDENTIALS),
        ("Bearer abc, DPoP def", Reason.MULTIPLE_CREDENTIALS),
        ("DPoP abc, Basic dTpw", Reason.MULTIPLE_CREDENTIALS),
        ("DPoP a=b", Reason.MALFORMED_HEADER),
        ("ÐPoP abc", Reason.MALFORMED_HEADER),  # a scheme outside the token alphabet
    ],
)
def test_malformed_or_several_credentials_are_invalid_requests(header: str, reason: Reason) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        extract_credentials(header, BOTH)
    assert exc.value.reason is reason


ALGS = ("ES256", "PS256")


def test_both_challenges_when_both_schemes_are_accepted() -> None:
    refusal = challenge_for(
        DPoPMissingTokenError(algs=ALGS, bearer=True),
        realm="api",
        resource_metadata="https://api.test/.well-known/oauth-protected-resource",
    )
    assert refusal.status == 401 and refusal.body == b""
    meta = 'resource_metadata="https://api.test/.well-known/oauth-protected-resource"'
    assert refusal.header("www-authenticate") == (
        f'Bearer realm="api", {meta}, DPoP realm="api", algs="ES256 PS256", {meta}'
    )
    assert (
        challenge_for(DPoPMissingTokenError(algs=ALGS, bearer=True)).header("www-authenticate")
        == 'Bearer, DPoP algs="ES256 PS256"'
    )


def test_only_the_dpop_challenge_when_dpop_is_required() -> None:
    refusal = challenge_for(DPoPMissingTokenError(algs=ALGS, bearer=False))
    assert refusal.header("www-authenticate") == 'DPoP algs="ES256 PS256"'


def test_a_proof_refusal_is_a_dpop_challenge() -> None:
    refusal = challenge_for(InvalidDPoPProofError(Reason.DPOP_REPLAYED, algs=ALGS))
    assert refusal.status == 401
    assert refusal.header("www-authenticate") == (
        'DPoP error="invalid_dpop_proof", '
        'error_description="The DPoP proof has been used before.", algs="ES256 PS256"'
    )
