"""Property tests for DPoP proofs and the sender-binding parsers, with strict oracles.

Whatever the header values, JWS bytes or JSON shapes: the only exceptions are the documented
ones, a proof whose signed bytes were changed is never accepted, a proof is accepted exactly when
an independent reading of RFC 9449 §4.3 says so, and no refusal quotes the proof or the token.
Bounded: a few seconds in all.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from bearerguard._binding import check_binding
from bearerguard._dpop import (
    DPoPPolicy,
    access_token_hash,
    verify_proof,
)
from bearerguard._dpop_client import OMIT, DPoPKey
from bearerguard._errors import BearerError, InvalidDPoPProofError, UseDPoPNonceError
from bearerguard._htu import normalize_htu
from bearerguard._thumbprint import (
    CertificateFormatError,
    client_thumbprint,
    jwk_thumbprint,
    pem_certificate,
    xfcc_thumbprint,
)
from bearerguard.cli._explain_binding import explain_binding
from bearerguard.cli._report import Report

NOW = 1_700_000_000
URL = "https://api.example.com/v1/items"
TOKEN = "tok-EN.value_42"
POLICY = DPoPPolicy()
KEY = DPoPKey("ES256")
GOOD = KEY.proof("GET", URL, TOKEN, iat=NOW, jti="j-1")
DOCUMENTED = (InvalidDPoPProofError, UseDPoPNonceError)
FAST = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def _verify(proofs: list[str], **kw: Any) -> Any:
    args: dict[str, Any] = {
        "method": "GET",
        "url": URL,
        "access_token": TOKEN,
        "policy": POLICY,
        "now": NOW,
    }
    return verify_proof(proofs, **(args | kw))


def _assert_safe(error: BaseException, *secrets: str) -> None:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None:
        chain.append(current)
        current = current.__cause__
    text = " ".join(str(e) for e in chain)
    for secret in secrets:
        if len(secret) >= 6:
            assert secret not in text


@FAST
@given(st.lists(st.text(max_size=300), max_size=3))
def test_any_header_values_raise_only_documented_errors(values: list[str]) -> None:
    try:
        _verify(values)
    except DOCUMENTED as error:
        _assert_safe(error, *values)
    else:
        pytest.fail("an arbitrary header value was accepted")


@FAST
@given(st.data())
def test_a_changed_proof_is_never_accepted(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(GOOD) - 1))
    kind = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    char = data.draw(st.characters(codec="ascii") | st.sampled_from("AQgw-_.="))
    if kind == "replace":
        mutated = GOOD[:index] + char + GOOD[index + 1 :]
    elif kind == "insert":
        mutated = GOOD[:index] + char + GOOD[index:]
    else:
        mutated = GOOD[:index] + GOOD[index + 1 :]
    assume(mutated != GOOD)
    with pytest.raises(DOCUMENTED) as caught:
        _verify([mutated])
    _assert_safe(caught.value, mutated, TOKEN)


VALID: dict[str, Any] = {
    "typ": "dpop+jwt",
    "jwk": KEY.jwk,
    "jti": "jti-123",
    "htm": "GET",
    "htu": URL,
    "iat": NOW,
    "ath": access_token_hash(TOKEN),
}
NEAR: dict[str, list[Any]] = {  # wrong values that look right
    "typ": ["JWT", "DPoP+jwt", "application/dpop+jwt"],
    "jwk": [DPoPKey("ES256").jwk, KEY.jwk | {"d": "AAAA"}, {**KEY.jwk, "crv": "P-384"}],
    "jti": ["", "j" * 129, "j" * 128],
    "htm": ["get", "POST", "GET "],
    "htu": [URL + "/", URL.upper(), "https://api.example.com:443/v1/items", URL + "?q=1"],
    "iat": [NOW - 60, NOW - 61, NOW + 5, NOW + 6, NOW + 5.5, float(NOW), True],
    "ath": [access_token_hash(TOKEN + "x"), access_token_hash(TOKEN)[:-1]],
}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_signed_json_shapes_are_accepted_exactly_when_rfc9449_says(data: st.DataObject) -> None:
    values = dict(VALID)
    for name in data.draw(st.sets(st.sampled_from(sorted(VALID)), max_size=3)):
        values[name] = data.draw(st.sampled_from([OMIT, *NEAR[name]]) | json_values)
    extra: dict[str, Any] = data.draw(
        st.dictionaries(
            st.sampled_from(["nbf", "x", "nonce"]),
            json_values | st.sampled_from(["n" * 512, "n" * 513]),  # the nonce's length bound
            max_size=2,
        )
    )
    typ, jwk = values.pop("typ"), values.pop("jwk")
    proof = KEY.proof("GET", URL, header={"typ": typ, "jwk": jwk}, **values, **extra)
    # The oracle: RFC 9449 §4.2-4.3 read independently of the code under test.
    jti, iat, nonce = values["jti"], values["iat"], extra.get("nonce")
    expected = (
        typ == "dpop+jwt"
        and jwk == KEY.jwk
        and type(jti) is str
        and 0 < len(jti) <= 128
        and values["htm"] == "GET"
        and values["htu"] in (URL, "https://api.example.com:443/v1/items", URL + "?q=1")
        and type(iat) in (int, float)
        and NOW - 60 <= iat <= NOW + 5
        and values["ath"] == access_token_hash(TOKEN)
        and (
            nonce is None
            or (
                type(nonce) is str
                and nonce.isascii()
                and nonce.isprintable()
                and 0 < len(nonce) <= 512
                and '"' not in nonce
                and "\\" not in nonce
                and " " not in nonce
            )
        )
    )
    try:
        result = _verify([proof])
    except DOCUMENTED as error:
        refusal: BaseException | None = error
    else:
        refusal = None
        assert (result.jkt, result.jti, result.iat) == (KEY.jkt, jti, iat)
    assert (refusal is None) == expected, refusal
    if refusal is not None:
        _assert_safe(refusal, proof, TOKEN)
    event(f"accepted: {expected}")


# Client certificates as Envoy forwards them (hex SHA-256), and one that is not readable.
CERT, OTHER_CERT = "Hash=" + "ab" * 32, "Hash=" + "ac" * 32
X5T = client_thumbprint(CERT)


@FAST
@given(
    st.dictionaries(st.text(max_size=5) | st.just("x5t#S256"), json_values | st.just(X5T)),
    json_values,
    st.sampled_from([None, CERT, OTHER_CERT, "Hash=ab", "-----BEGIN junk"]),
)
@example(cnf={"x5t#S256": None}, other={"jkt": None}, cert=CERT)  # null members: malformed
def test_binding_checks_raise_only_refusals(cnf: dict[str, Any], other: Any, cert: Any) -> None:
    # One rule for every server: with DPoP off, every request is a Bearer one.
    for value in (cnf, other):
        for scheme in ("Bearer", "DPoP"):
            try:
                check_binding(value, None, cert, scheme)
            except BearerError as error:
                status = error.status_code
            else:
                status = 200
            names_certificate = isinstance(value, dict) and "x5t#S256" in value
            if status != 200:
                assert status == 401
            elif names_certificate:  # the certificate it names was presented
                assert cert == CERT and value["x5t#S256"] == X5T
            if status == 200:  # accepted: nothing it could not check, no jkt to prove
                assert value in (None, {}) or (
                    isinstance(value, dict) and set(value) == {"x5t#S256"}
                )
                assert scheme == "Bearer"


@FAST
@given(
    st.one_of(
        st.none(),
        json_values,
        st.dictionaries(
            st.sampled_from(["jkt", "x5t#S256", "jwk", ""]), json_values | st.just(X5T)
        ),
    )
)
def test_checks_binding_step_agrees_with_the_server_on_any_cnf(cnf: Any) -> None:
    """`bearerguard check`'s `binding` step over any `cnf` a token may carry: one step, never an
    exception, failed exactly when the server refuses the token sent alone, with its reason."""
    claims = {} if cnf is None else {"cnf": cnf}
    try:
        check_binding(claims.get("cnf"), None, None, "Bearer")
    except BearerError as error:
        refusal: BearerError | None = error
    else:
        refusal = None
    report = Report(now=0.0, token_bytes=0, verified=True)
    explain_binding(claims, report)
    (step,) = report.steps
    assert step.name == "binding" and step.detail
    assert (step.status == "failed") == (refusal is not None)
    if refusal is not None:
        assert step.error is not None and step.error.reason is refusal.reason


# --- URL normalisation -----------------------------------------------------------------------

segments = st.lists(st.text("abcXYZ019-._~!$&'()*+,;=:@", min_size=1, max_size=6), max_size=4)
segments = segments.filter(lambda s: all(x not in (".", "..") for x in s))


def _flip_case(data: st.DataObject, text: str) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True))


@FAST
@given(
    st.data(),
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z0-9]{1,8}(\.[a-z]{2,4}){1,2}", fullmatch=True),
    segments,
)
def test_equivalent_urls_normalise_alike(
    data: st.DataObject, scheme: str, host: str, path: list[str]
) -> None:
    plain = f"{scheme}://{host}/{'/'.join(path)}"
    draw = data.draw
    port = draw(st.sampled_from(["", ":", ":80" if scheme == "http" else ":443"]))
    encoded = "/".join(
        "".join(
            f"%{ord(c):02{draw(st.sampled_from(['x', 'X']))}}"
            if c.isalnum() and draw(st.booleans())
            else c
            for c in segment
        )
        for segment in path
    )
    query = draw(st.sampled_from(["", "?a=1", "#frag", "?a=b#c"]))
    variant = f"{_flip_case(data, scheme)}://{_flip_case(data, host)}{port}/{encoded}{query}"
    assert normalize_htu(variant) == normalize_htu(plain) == plain


@FAST
@given(st.text(max_size=80))
def test_normalisation_is_total_and_idempotent(url: str) -> None:
    normal = normalize_htu(url)
    if normal is not None:
        assert normalize_htu(normal) == normal
        assert normal.startswith(("http://", "https://"))


@FAST
@given(
    st.sampled_from(["http", "HTTPS"]),
    st.lists(st.sampled_from(["a", "B", ".", "..", "%7e", "%2F", "%41"]), max_size=6),
    st.sampled_from(["", "?q=1", "#f"]),
)
def test_dot_segments_are_resolved_as_rfc3986_says(scheme: str, path: list[str], tail: str) -> None:
    # URLs with dot segments (text() almost never draws a URL): RFC 3986 §5.2.4 and §6.2.2.
    normal = normalize_htu(f"{scheme}://API.example.com/" + "/".join(path) + tail)
    assert normal is not None
    assert normalize_htu(normal) == normal
    parts = normal.split("/")[3:]
    assert "." not in parts and ".." not in parts
    if path and path[-1] in (".", ".."):  # "a/.." names the directory: "/" stays
        assert normal.endswith("/")
    assert "?" not in normal and "#" not in normal


def test_a_trailing_dot_dot_keeps_the_directory_slash() -> None:
    assert normalize_htu("https://api.example.com/orders/7/..") == "https://api.example.com/orders/"
    assert normalize_htu("https://api.example.com/orders/.") == "https://api.example.com/orders/"


# --- thumbprints and forwarded certificates ------------------------------------------------------


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["kty", "crv", "x", "y", "n", "e", "d", "k", "kid"]),
        json_values | st.sampled_from(["EC", "RSA", "OKP", "P-256", "Ed25519", "AQAB"]),
        max_size=6,
    )
)
def test_thumbprint_takes_any_mapping(jwk: dict[str, Any]) -> None:
    try:
        result = jwk_thumbprint(jwk)
    except ValueError:
        return
    assert len(result) == 43
    assert not {"d", "k"} & set(jwk)


@FAST
@given(st.text(max_size=400) | st.text(max_size=400).map(quote))
def test_certificate_parsers_raise_only_their_error(text: str) -> None:
    for parse in (pem_certificate, xfcc_thumbprint):
        try:
            parse(text)
        except CertificateFormatError as error:
            message = str(error)
        else:
            message = ""
        assert len(text) < 8 or text not in message


def test_huge_inputs_are_refused_at_once() -> None:
    started = time.perf_counter()
    for size in (10**6, 10**7):
        with pytest.raises(InvalidDPoPProofError):
            _verify(["A" * size])
        with pytest.raises(CertificateFormatError):
            xfcc_thumbprint('"' * size)
        with pytest.raises(CertificateFormatError):
            pem_certificate("%" * size)
    assert time.perf_counter() - started < 1.0
