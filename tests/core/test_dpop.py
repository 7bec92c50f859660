"""DPoP proofs (RFC 9449 §4.3, one test per check), token binding (§6, §7; RFC 8705 §3), and the
DPoP challenge. Proofs come from `DPoPKey`, which shares no code with the verifier."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bearerguard import ConfigurationError, InvalidTokenError, Reason, challenge_for
from bearerguard._binding import check_binding
from bearerguard._dpop import (
    DEFAULT_ALGORITHMS,
    MAX_JTI_LENGTH,
    DPoPPolicy,
    DPoPProof,
    access_token_hash,
    verify_proof,
)
from bearerguard._dpop_client import OMIT, DPoPKey
from bearerguard._errors import (
    DPoPBindingError,
    InvalidDPoPProofError,
    UseDPoPNonceError,
)
from bearerguard._thumbprint import client_thumbprint

from ..helpers import b64, dumps

NOW = 1_700_000_000
URL = "https://api.example.com/orders/7"
TOKEN = "an.access-token_value~"
POLICY = DPoPPolicy()

# RFC 9449 Figure 13 (a resource request, §7.1) and Figure 2 (a token request, §4.1), unwrapped.
RFC9449_FIGURE_13 = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0"
    "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10"
    "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIj"
    "oiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlh"
    "dCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9"
    ".2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
)
RFC9449_FIGURE_2 = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0"
    "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10"
    "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj"
    "oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ"
    ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
RFC9449_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"  # §6.1 Figure 9


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey("ES256")


def verify(proofs: list[str], **kw: Any) -> DPoPProof:
    args: dict[str, Any] = {
        "method": "GET",
        "url": URL,
        "access_token": TOKEN,
        "policy": POLICY,
        "now": NOW,
    }
    return verify_proof(proofs, **(args | kw))


def refused(proofs: list[str], **kw: Any) -> Reason:
    with pytest.raises((InvalidDPoPProofError, UseDPoPNonceError)) as caught:
        verify(proofs, **kw)
    assert caught.value.algs == POLICY.algorithms or "policy" in kw
    return caught.value.reason


def good(key: DPoPKey, **claims: Any) -> str:
    return key.proof("GET", URL, TOKEN, **({"iat": NOW} | claims))


# --- RFC examples -------------------------------------------------------------------------------


def test_rfc9449_examples_verify_with_their_thumbprint_and_ath() -> None:
    proof = verify_proof(
        [RFC9449_FIGURE_13],
        method="GET",
        url="https://resource.example.org/protectedresource",
        access_token=RFC9449_TOKEN,
        policy=POLICY,
        now=1562262618,
    )
    assert (proof.jkt, proof.jti, proof.iat) == (RFC9449_JKT, "e1j3V_bKic8-LAEB", 1562262618)
    assert proof.usable_until == 1562262618 + POLICY.max_age
    assert access_token_hash(RFC9449_TOKEN) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    token_request = verify_proof(
        [RFC9449_FIGURE_2],
        method="POST",
        url="https://server.example.com/token",
        access_token=None,  # a token request: no ath
        policy=POLICY,
        now=1562262616,
    )
    assert token_request.jkt == RFC9449_JKT


@pytest.mark.parametrize("alg", ["RS256", "RS512", "PS256", "PS384", "ES256", "ES384", "ES512"])
def test_a_good_proof_of_every_algorithm_verifies(alg: str) -> None:
    key = DPoPKey(alg)
    proof = verify([good(key)])
    assert proof.jkt == key.jkt
    assert (proof.htm, proof.htu, proof.iat, proof.nonce) == ("GET", URL, NOW, None)
    assert proof.key.kty == key.jwk["kty"]


def test_eddsa_proofs_verify() -> None:
    key = DPoPKey("EdDSA")
    assert verify([good(key)]).jkt == key.jkt


# --- §4.3 step by step: each check alone refuses ------------------------------------------------


def test_1_exactly_one_proof(key: DPoPKey) -> None:
    proof = good(key)
    assert refused([]) is Reason.DPOP_MISSING
    assert refused([proof, proof]) is Reason.DPOP_MULTIPLE
    assert refused([f"{proof}, {proof}"]) is Reason.DPOP_MALFORMED  # folded by a proxy


def test_size_is_checked_before_anything_else(key: DPoPKey) -> None:
    proof = good(key)
    small = DPoPPolicy(max_proof_bytes=len(proof) - 1)
    assert refused([proof], policy=small) is Reason.DPOP_TOO_LARGE
    assert refused(["!" * (POLICY.max_proof_bytes + 1)]) is Reason.DPOP_TOO_LARGE
    assert refused([b"a.b.c"]) is Reason.DPOP_MALFORMED  # type: ignore[list-item]
    assert verify([proof], policy=DPoPPolicy(max_proof_bytes=len(proof))).jkt == key.jkt


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p.rsplit(".", 1)[0],  # two segments
        lambda p: p + ".x",  # four
        lambda p: p.replace(".", "..", 1),  # an empty segment
        lambda p: p + "=",  # padding
        lambda p: "é" + p,  # not ASCII
        lambda p: b64(b"not json") + p[p.index(".") :],
        lambda p: b64(b'{"typ":"dpop+jwt","typ":"x"}') + p[p.index(".") :],  # duplicate member
        lambda p: b64(b"[1]") + p[p.index(".") :],  # not an object
    ],
)
def test_2_a_well_formed_jws(key: DPoPKey, mangle: Any) -> None:
    assert refused([mangle(good(key))]) is Reason.DPOP_MALFORMED


@pytest.mark.parametrize("header", [{"crit": ["exp"]}, {"b64": False}])
def test_2_no_extension_changes_how_the_proof_is_read(key: DPoPKey, header: Any) -> None:
    assert refused([good(key, header=header)]) is Reason.DPOP_MALFORMED


@pytest.mark.parametrize(
    "claims",
    [
        {"jti": OMIT},
        {"jti": ""},
        {"jti": 7},
        {"jti": "j" * (MAX_JTI_LENGTH + 1)},
        {"htm": OMIT},
        {"htm": ["GET"]},
        {"htu": OMIT},
        {"htu": None},
        {"iat": OMIT},
        {"iat": str(NOW)},
        {"iat": True},
        {"ath": OMIT},
        {"ath": 1},
        {"nonce": ""},
        {"nonce": 'a"b'},  # not NQCHAR (RFC 9449 §8.1)
        {"nonce": ["n"]},
    ],
)
def test_3_required_claims_of_the_right_types(key: DPoPKey, claims: dict[str, Any]) -> None:
    assert refused([good(key, **claims)]) is Reason.DPOP_CLAIM


def test_3_a_token_request_needs_no_ath(key: DPoPKey) -> None:
    proof = key.proof("POST", URL, iat=NOW)
    assert verify([proof], method="POST", access_token=None).jkt == key.jkt


@pytest.mark.parametrize("typ", [OMIT, "JWT", "at+jwt", "DPOP+JWT", "application/dpop+jwt", 1])
def test_4_typ_is_exactly_dpop_jwt(key: DPoPKey, typ: Any) -> None:
    assert refused([good(key, header={"typ": typ})]) is Reason.DPOP_TYPE


@pytest.mark.parametrize("alg", [OMIT, "none", "HS256", "ES256K", "RS1", ["ES256"], None])
def test_5_alg_is_an_allowed_asymmetric_algorithm(key: DPoPKey, alg: Any) -> None:
    assert refused([good(key, header={"alg": alg})]) is Reason.DPOP_ALGORITHM


def test_5_alg_follows_the_policy(key: DPoPKey) -> None:
    rsa = DPoPKey("RS256")
    only_es = DPoPPolicy(algorithms=("ES256",))
    assert refused([good(rsa)], policy=only_es) is Reason.DPOP_ALGORITHM
    assert verify([good(key)], policy=only_es).jkt == key.jkt


def test_7_jwk_present_public_and_fitting_alg(key: DPoPKey) -> None:
    private = dict(key.jwk, d=b64(b"\x01" * 32))
    p384 = DPoPKey("ES384")
    cases: list[dict[str, Any]] = [
        {"jwk": OMIT},
        {"jwk": "key"},
        {"jwk": private},  # RFC 9449 §4.3 step 7
        {"jwk": {"kty": "oct", "k": b64(b"secret")}},
        {"jwk": dict(key.jwk, kty="RSA")},
        {"jwk": dict(key.jwk, x="not base64url!")},
        {"jwk": dict(key.jwk, crv="P-256K")},
        {"jwk": p384.jwk},  # a P-384 key for ES256
        {"jwk": dict(key.jwk, alg="ES384")},  # the key pins another algorithm
        {"alg": "RS256"},  # an EC key for RS256
    ]
    for header in cases:
        assert refused([good(key, header=header)]) is Reason.DPOP_KEY, header


def test_7_rsa_keys_under_2048_bits_are_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = DPoPKey("RS256", private_key=rsa.generate_private_key(65537, 1024))
    assert refused([good(weak)]) is Reason.DPOP_KEY


def test_6_the_signature_is_checked_with_the_jwk(key: DPoPKey) -> None:
    proof = good(key)
    head, payload, signature = proof.split(".")
    other = DPoPKey("ES256")
    forged_claims = json.loads(_unb64(payload)) | {"htm": "GET", "jti": "another"}
    cases = [
        f"{head}.{payload}.{other.proof('GET', URL).split('.')[2]}",  # someone else's signature
        good(key, header={"jwk": other.jwk}),  # signed by key, carrying other's public key
        f"{head}.{b64(dumps(forged_claims))}.{signature}",  # the signed claims changed
        f"{head}.{payload}.{b64(bytes(64))}",
    ]
    for forged in cases:
        assert refused([forged]) is Reason.DPOP_SIGNATURE


@pytest.mark.parametrize("method", ["POST", "get", "Get", "GET "])
def test_8_htm_is_the_request_method(key: DPoPKey, method: str) -> None:
    assert refused([good(key)], method=method) is Reason.DPOP_METHOD


@pytest.mark.parametrize(
    "htu",
    [
        "HTTPS://API.Example.COM/orders/7",
        "https://api.example.com:443/orders/7",
        "https://api.example.com:0443/orders/7",
        "https://api.example.com:/orders/7",
        "https://api.example.com/orders/%37",  # an unreserved character, encoded
        "https://api.example.com/orders/./x/../7",
        "https://api.example.com/orders/7?ignored=1#and-this",
    ],
)
def test_9_htu_matches_after_normalisation(key: DPoPKey, htu: str) -> None:
    assert verify([good(key, htu=htu)]).htu == URL


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/orders/8",
        "https://api.example.com/orders/7/",
        "http://api.example.com/orders/7",
        "https://api.example.com:8443/orders/7",
        "https://evil.example.com/orders/7",
        "https://user@api.example.com/orders/7",
        "https://api.example.com/ORDERS/7",  # the path is case-sensitive
        "https://api.example.com/orders/%2537",  # "%37" itself, encoded
        "https://api.example.com/orders/%zz",
        "api.example.com/orders/7",
        "",
    ],
)
def test_9_htu_is_the_request_url(key: DPoPKey, htu: str) -> None:
    assert refused([good(key, htu=htu)]) is Reason.DPOP_URL


def test_9_the_request_url_is_normalised_too(key: DPoPKey) -> None:
    proof = good(key, htu="https://api.example.com/")
    assert verify([proof], url="https://API.example.com:443?q=1").htu == "https://api.example.com/"
    proof = good(key, htu="https://api.example.com/a%2fb")  # reserved: stays encoded
    assert verify([proof], url="https://api.example.com/a%2Fb").htu.endswith("/a%2Fb")
    assert refused([proof], url="https://api.example.com/a/b") is Reason.DPOP_URL
    # A URL outside RFC 3986 matches nothing, not even itself.
    for url in ("ftp://api.example.com/orders/7", "https://api.example.com/a b", "https://a\\b/"):
        assert refused([good(key, htu=url)], url=url) is Reason.DPOP_URL


def test_10_nonce_when_required(key: DPoPKey) -> None:
    policy = DPoPPolicy(require_nonce=True)
    issued = {"n-1"}
    assert refused([good(key)], policy=policy, nonce_ok=issued.__contains__) is Reason.DPOP_NONCE
    stale = good(key, nonce="n-0")
    with pytest.raises(UseDPoPNonceError) as caught:
        verify([stale], policy=policy, nonce_ok=issued.__contains__)
    assert caught.value.error == "use_dpop_nonce"
    proof = verify([good(key, nonce="n-1")], policy=policy, nonce_ok=issued.__contains__)
    assert proof.nonce == "n-1"
    # Not required: a nonce is still checked when the caller can check it.
    assert refused([stale], nonce_ok=issued.__contains__) is Reason.DPOP_NONCE
    assert verify([stale]).nonce == "n-0"
    with pytest.raises(ConfigurationError):
        verify([good(key)], policy=policy)  # required, but nothing to check it with


def test_11_iat_within_the_window(key: DPoPKey) -> None:
    assert verify([good(key, iat=NOW - POLICY.max_age)]).iat == NOW - 60
    assert verify([good(key, iat=NOW + POLICY.leeway)]).iat == NOW + 5
    assert verify([good(key, iat=NOW + 0.5)]).iat == NOW + 0.5
    assert refused([good(key, iat=NOW - POLICY.max_age - 1)]) is Reason.DPOP_TOO_OLD
    assert refused([good(key, iat=NOW + POLICY.leeway + 1)]) is Reason.DPOP_IN_FUTURE
    assert refused([good(key, iat=10**30)]) is Reason.DPOP_IN_FUTURE
    assert refused([good(key, iat=-(10**30))]) is Reason.DPOP_TOO_OLD


def test_12_ath_is_the_hash_of_the_access_token(key: DPoPKey) -> None:
    assert refused([good(key)], access_token=TOKEN + "x") is Reason.DPOP_ATH
    assert refused([good(key, ath=access_token_hash(TOKEN) + "A")]) is Reason.DPOP_ATH


def test_checks_run_in_the_rfc_order(key: DPoPKey) -> None:
    # A proof wrong in everything is refused for the first check it fails.
    bad = key.proof("POST", "https://x.test/", iat=0, header={"typ": "JWT", "alg": "HS256"})
    assert refused([bad]) is Reason.DPOP_CLAIM  # step 3: no ath
    assert refused([bad], access_token=None) is Reason.DPOP_TYPE  # step 4


def test_refusals_never_quote_the_proof(key: DPoPKey) -> None:
    proof = good(key, htu="https://secret.example/x", jti="secret-jti")
    with pytest.raises(InvalidDPoPProofError) as caught:
        verify([proof])
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__
    text = " ".join(str(e) for e in chain)
    assert "secret" not in text and TOKEN not in text and proof[:20] not in text


# --- policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"algorithms": ("none",)}, "algorithms"),
        ({"algorithms": ("HS256",)}, "algorithms"),
        ({"algorithms": ("ES256", "HS512")}, "algorithms"),
        ({"algorithms": "ES256"}, "algorithms"),
        ({"algorithms": ()}, "algorithms"),
        ({"max_age": -1}, "max_age"),
        ({"max_age": math.nan}, "max_age"),
        ({"leeway": math.inf}, "leeway"),
        ({"leeway": "5"}, "leeway"),
        ({"max_proof_bytes": 0}, "max_proof_bytes"),
        ({"max_proof_bytes": True}, "max_proof_bytes"),
        ({"require_nonce": "yes"}, "require_nonce"),
    ],
)
def test_policy_refuses_unsafe_settings(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        DPoPPolicy(**kw)
    assert caught.value.field == field


def test_policy_defaults_are_the_asymmetric_algorithms() -> None:
    assert set(DEFAULT_ALGORITHMS) == {
        *(f"{f}{n}" for f in ("RS", "PS", "ES") for n in (256, 384, 512)),
        "EdDSA",
    }
    assert DPoPPolicy(algorithms=["ES256"]).algorithms == ("ES256",)


# --- binding (RFC 9449 §6, §7.1, §7.2; RFC 8705 §3) --------------------------------------------


def test_binding_of_a_dpop_token(key: DPoPKey) -> None:
    proof = verify([good(key)])
    check_binding({"jkt": key.jkt}, proof, None, "DPoP")
    check_binding({"jkt": key.jkt}, proof, None, "dpop")  # the scheme is case-insensitive
    with pytest.raises(DPoPBindingError) as caught:
        check_binding({"jkt": DPoPKey().jkt}, proof, None, "DPoP", algs=("ES256",))
    assert (caught.value.reason, caught.value.error) == (Reason.DPOP_BINDING, "invalid_token")
    assert isinstance(caught.value, InvalidTokenError)
    with pytest.raises(DPoPBindingError):
        check_binding({"jkt": key.jkt}, None, None, "DPoP")


def test_a_dpop_bound_token_is_refused_as_a_bearer_token(key: DPoPKey) -> None:
    proof = verify([good(key)])
    with pytest.raises(InvalidTokenError) as caught:
        check_binding({"jkt": key.jkt}, proof, None, "Bearer")
    assert caught.value.reason is Reason.DPOP_DOWNGRADE
    assert not isinstance(caught.value, DPoPBindingError)  # a Bearer challenge


@pytest.mark.parametrize("cnf", [None, {}])
def test_the_dpop_scheme_needs_a_dpop_bound_token(key: DPoPKey, cnf: Any) -> None:
    proof = verify([good(key)])
    with pytest.raises(DPoPBindingError) as caught:
        check_binding(cnf, proof, None, "DPoP")
    assert caught.value.reason is Reason.DPOP_UNBOUND
    check_binding(cnf, proof, None, "Bearer")  # an unbound bearer token: the proof is moot
    check_binding(cnf, None, None, "Bearer")


# A client certificate as Envoy forwards it (`Hash=`, hex SHA-256 of the DER) and its x5t#S256.
CERT, OTHER_CERT = "Hash=" + "ab" * 32, "Hash=" + "ac" * 32
X5T = client_thumbprint(CERT)


def test_certificate_binding() -> None:
    check_binding({"x5t#S256": X5T}, None, CERT, "Bearer")
    for presented in (None, OTHER_CERT):
        with pytest.raises(InvalidTokenError) as caught:
            check_binding({"x5t#S256": X5T}, None, presented, "Bearer")
        assert caught.value.reason is Reason.CERT_BINDING
    with pytest.raises(InvalidTokenError) as caught:
        check_binding({"x5t#S256": X5T}, None, "Hash=abc", "Bearer")
    assert caught.value.reason is Reason.CERT_MALFORMED


def test_both_bindings_are_checked(key: DPoPKey) -> None:
    proof = verify([good(key)])
    cnf = {"jkt": key.jkt, "x5t#S256": X5T}
    check_binding(cnf, proof, CERT, "DPoP")
    with pytest.raises(DPoPBindingError) as caught:
        check_binding(cnf, proof, OTHER_CERT, "DPoP")
    assert caught.value.reason is Reason.CERT_BINDING


@pytest.mark.parametrize(
    ("cnf", "reason"),
    [
        ("jkt", Reason.CLAIM_TYPE),
        ([], Reason.CLAIM_TYPE),
        ({"jkt": 1}, Reason.CLAIM_TYPE),
        ({"x5t#S256": None, "jkt": ["a"]}, Reason.CLAIM_TYPE),
        ({"jwk": {"kty": "EC"}}, Reason.CONFIRMATION),  # RFC 7800: not checkable here
        ({"kid": "k"}, Reason.CONFIRMATION),
    ],
)
def test_confirmation_claims_we_cannot_check_are_refused(cnf: Any, reason: Reason) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        check_binding(cnf, None, None, "Bearer")
    assert caught.value.reason is reason


# --- the DPoP challenge (RFC 9449 §7.1) ----------------------------------------------------------


def test_dpop_refusals_render_a_dpop_challenge_with_algs() -> None:
    rendered = challenge_for(InvalidDPoPProofError(Reason.DPOP_URL, algs=("ES256", "PS256")))
    assert rendered.status == 401
    assert rendered.header("www-authenticate") == (
        'DPoP error="invalid_dpop_proof", '
        'error_description="The DPoP proof was made for another URL.", algs="ES256 PS256"'
    )
    assert json.loads(rendered.body)["error"] == "invalid_dpop_proof"
    binding = challenge_for(DPoPBindingError(Reason.DPOP_BINDING, algs=("ES256",)), realm="api")
    assert binding.header("www-authenticate") == (
        'DPoP realm="api", error="invalid_token", '
        'error_description="The access token is bound to another key than the DPoP proof\'s.", '
        'algs="ES256"'
    )
    nonce = challenge_for(UseDPoPNonceError(Reason.DPOP_NONCE))
    assert nonce.header("www-authenticate") == (
        'DPoP error="use_dpop_nonce", '
        'error_description="The DPoP proof lacks a valid nonce from this server."'
    )
    downgrade = challenge_for(InvalidTokenError(Reason.DPOP_DOWNGRADE))
    assert (downgrade.header("www-authenticate") or "").startswith('Bearer error="invalid_token"')


def _unb64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_remembered_headers_change_no_verdict(key: DPoPKey) -> None:
    # The header memo holds the decoded header and key; every policy check runs on every call.
    proof = good(key)
    assert verify([proof]).jkt == key.jkt
    assert refused([proof], policy=DPoPPolicy(algorithms=("RS256",))) is Reason.DPOP_ALGORITHM
    private = good(key, header={"jwk": dict(key.jwk, d=b64(b"\x01" * 32))})
    for _ in range(2):
        assert refused([private]) is Reason.DPOP_KEY
