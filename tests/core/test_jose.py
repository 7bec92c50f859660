from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from bearerguard import InvalidTokenError, Reason
from bearerguard._jose import json_object, parse
from bearerguard._token import MAX_JSON_DEPTH

from ..helpers import Signer, b64, dumps, sign_raw

CLAIMS = {"iss": "https://issuer.test", "aud": "api", "exp": 2_000_000_000}


def test_parse_reads_header_claims_and_signing_input(signer: Signer) -> None:
    token = signer.sign(CLAIMS, "ES256")
    jwt = parse(token)
    assert jwt.alg == "ES256"
    assert jwt.kid == "es256-1"
    assert jwt.claims == CLAIMS
    assert jwt.signing_input == token.rsplit(".", 1)[0].encode()
    assert len(jwt.signature) == 64  # raw r||s for P-256


@pytest.mark.parametrize(
    "segment",
    [
        "QQ==",  # padding is not allowed in JWS (RFC 7515 §2)
        "QR",  # "A" with non-zero unused bits: not canonical
        "QUK",  # "AB" with non-zero unused bits
        "Q",  # a length of 1 mod 4 cannot be base64
        "QU+/",  # standard alphabet, not base64url
        "QU J",
        "QU=J",  # padding inside
        "QU.J",
        "QU\nJ",
        "QU\x00J",
        "QUéJ",
        "Q/JD",
    ],
)
@pytest.mark.parametrize("position", [0, 1, 2])
def test_each_segment_must_be_canonical_base64url(segment: str, position: int) -> None:
    # The bad segment in the header, payload or signature position of an otherwise good token.
    good = [b64(dumps({"alg": "ES256"})), b64(dumps(CLAIMS)), "QUJD"]
    good[position] = segment
    with pytest.raises(InvalidTokenError) as refused:
        parse(".".join(good))
    assert refused.value.reason is Reason.MALFORMED


@pytest.mark.parametrize(
    ("segment", "decoded"),
    [
        ("QQ", b"A"),
        ("QUI", b"AB"),
        ("QUJD", b"ABC"),
        ("_-8", b"\xff\xef"),
        ("-_-_", b"\xfb\xff\xbf"),
    ],
)
def test_canonical_base64url_segments_decode(segment: str, decoded: bytes) -> None:
    jwt = parse(".".join([b64(dumps({"alg": "ES256"})), b64(dumps(CLAIMS)), segment]))
    assert jwt.signature == decoded


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',  # duplicate member names (RFC 7515 §5.2, RFC 7519 §4)
        b'{"a":{"b":1,"b":1}}',
        b'{"exp":NaN}',
        b'{"exp":Infinity}',
        b"[1,2]",
        b'"string"',
        b"\xff\xfe{}",  # not UTF-8
        b'{"a":1',
        b"",
        b'{"a":1} x',  # trailing data
        b'{"a":1}{"b":2}',
        b" ",
    ],
)
def test_json_object_refuses(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        json_object(raw)


@pytest.mark.parametrize("raw", [b'{"a":1}', b' {"a":1}', b'{"a":1}\r\n', b'{ "a" : 1 }'])
def test_json_object_accepts_whitespace_around_and_inside(raw: bytes) -> None:
    assert json_object(raw) == {"a": 1}


def forge(header: Any, payload: Any, signer: Signer, alg: str = "RS256") -> str:
    raw_header = header if isinstance(header, bytes) else dumps(header)
    raw_payload = payload if isinstance(payload, bytes) else dumps(payload)
    return sign_raw(raw_header, raw_payload, signer.keys[alg], alg)


def _in_payload(signer: Signer, text: str, width: int = 1) -> str:
    # Overwrite the payload's first `width` characters: the length mod 4 stays the same.
    header, payload, signature = signer.sign(CLAIMS).split(".")
    return f"{header}.{text}{payload[width:]}.{signature}"


MALFORMED: dict[str, Callable[[Signer], str]] = {
    "two segments": lambda s: "a.b",
    "four segments": lambda s: s.sign(CLAIMS) + ".x",
    "empty signature": lambda s: s.sign(CLAIMS).rsplit(".", 1)[0] + ".",
    "padded signature": lambda s: s.sign(CLAIMS) + "=",
    "JWE (five segments)": lambda s: "a.b.c.d.e",
    "header not JSON": lambda s: f"{b64(b'alg')}.{b64(dumps(CLAIMS))}.AAAA",
    "header is an array": lambda s: forge(b'["RS256"]', CLAIMS, s),
    "payload is an array": lambda s: forge({"alg": "RS256"}, b"[1]", s),
    "payload not UTF-8": lambda s: forge({"alg": "RS256"}, b'{"a":"\xff"}', s),
    "duplicate header member": lambda s: forge(b'{"alg":"RS256","alg":"HS256"}', CLAIMS, s),
    "duplicate claim": lambda s: forge(
        {"alg": "RS256"}, b'{"iss":"https://issuer.test","iss":"https://evil.test"}', s
    ),
    "alg not a string": lambda s: forge({"alg": ["RS256"]}, CLAIMS, s),
    "alg missing": lambda s: forge({"typ": "JWT"}, CLAIMS, s),
    "kid not a string": lambda s: forge({"alg": "RS256", "kid": 7}, CLAIMS, s),
    "kid null": lambda s: forge({"alg": "RS256", "kid": None}, CLAIMS, s),  # not the same as none
    "typ null": lambda s: forge({"alg": "RS256", "typ": None}, CLAIMS, s),
    "typ not a string": lambda s: forge({"alg": "RS256", "typ": 1}, CLAIMS, s),
    "non-canonical signature": lambda s: _noncanonical(s.sign(CLAIMS, "ES256")),
    "whitespace": lambda s: " " + s.sign(CLAIMS),
    "non-ASCII": lambda s: s.sign(CLAIMS) + "é",
    "empty header": lambda s: "." + s.sign(CLAIMS).split(".", 1)[1],
    "empty payload": lambda s: _in_payload(s, "", width=len(s.sign(CLAIMS).split(".")[1])),
    **{
        f"{name} inside the payload": functools.partial(_in_payload, text=char)
        for name, char in [
            ("'+' of standard base64", "+"),
            ("'/' of standard base64", "/"),
            ("'='", "="),
            ("a space", " "),
            ("a newline", "\n"),
            ("a NUL", "\x00"),
            ("a non-ASCII letter", "é"),
        ]
    },
}


def _noncanonical(token: str) -> str:
    # A 64-byte ES256 signature is 86 chars, 2 leftover: flip one unused bit of the last char.
    head, sig = token.rsplit(".", 1)
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(sig[-1])
    flipped = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last | 1]
    return f"{head}.{sig[:-1]}{flipped}"


@pytest.mark.parametrize("case", MALFORMED)
def test_parse_refuses_malformed(case: str, signer: Signer) -> None:
    with pytest.raises(InvalidTokenError) as info:
        parse(MALFORMED[case](signer))
    assert info.value.reason is Reason.MALFORMED


@pytest.mark.parametrize(
    "header",
    [
        {"jku": "https://evil.test/jwks"},  # RFC 8725 §3.10: never let the token pick its key
        {"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
        {"x5u": "https://evil.test/cert"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"], "exp": 1},  # RFC 7515 §4.1.11: we understand no extension
        {"crit": ["b64"], "b64": False},  # RFC 7797 unencoded payload
        {"b64": False},
        {"zip": "DEF"},
        {"enc": "A256GCM"},
    ],
)
def test_parse_refuses_headers_that_change_verification(
    header: dict[str, Any], signer: Signer
) -> None:
    with pytest.raises(InvalidTokenError) as info:
        parse(signer.sign(CLAIMS, header=header))
    assert info.value.reason is Reason.UNSUPPORTED_HEADER


@pytest.mark.parametrize(
    ("claims", "flat"),
    [
        ({"iss": "i", "exp": 1, "ok": True, "none": None}, True),
        ({"iss": "i", "aud": ["a", "b"]}, False),
        ({"iss": "i", "realm_access": {"roles": []}}, False),
        ({"iss": "i", "note": "a [bracket]"}, False),  # unsure: the slow, exact path
        ({"iss": "i", "note": "a {brace}"}, False),
    ],
)
def test_parse_tells_flat_claims_from_the_json_text(claims: dict[str, Any], flat: bool) -> None:
    jwt = parse(".".join([b64(dumps({"alg": "ES256"})), b64(dumps(claims)), "QUJD"]))
    assert jwt.flat is flat
    assert jwt.claims == claims


# -- hostile JSON: every failure is MALFORMED, never another exception (issue 13) --------------

HUGE = b"9" * 4301  # one digit over the interpreter's integer-string conversion limit


def nested(depth: int, kind: str = "array") -> bytes:
    """A JSON value `depth` containers deep: arrays, objects, or the two alternating."""
    opens = {"array": [b"["], "object": [b'{"a":'], "mixed": [b"[", b'{"a":']}[kind]
    closes = {b"[": b"]", b'{"a":': b"}"}
    chain = [opens[i % len(opens)] for i in range(depth)]
    return b"".join(chain) + b"1" + b"".join(closes[o] for o in reversed(chain))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":' + HUGE + b"}",
        b'{"a":-' + HUGE + b"}",
        b'{"a":[' + HUGE + b"]}",
        b' {"a":' + HUGE + b"} ",  # the full decoder's path
    ],
)
def test_a_number_of_too_many_digits_is_malformed_json(raw: bytes) -> None:
    with pytest.raises(ValueError, match="too many digits") as refused:
        json_object(raw)
    assert type(refused.value).__name__ == "Malformed"


@pytest.mark.parametrize("where", ["header", "payload"])
def test_a_huge_integer_in_a_token_is_malformed(signer: Signer, where: str) -> None:
    header, payload = b'{"alg":"RS256","x":%s}' % HUGE, dumps(CLAIMS)
    if where == "payload":
        header, payload = dumps({"alg": "RS256"}), b'{"iss":"https://issuer.test","n":%s}' % HUGE
    with pytest.raises(InvalidTokenError) as refused:
        parse(forge(header, payload, signer))
    assert refused.value.reason is Reason.MALFORMED


@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_json_nested_to_the_bound_is_read_and_one_more_is_refused(kind: str) -> None:
    # The outermost object counts 1: a member holding a value MAX_JSON_DEPTH - 1 deep.
    deepest = b'{"a":' + nested(MAX_JSON_DEPTH - 1, kind) + b"}"
    assert json_object(deepest)["a"]
    with pytest.raises(ValueError, match="nested more than 64 deep"):
        json_object(b'{"a":' + nested(MAX_JSON_DEPTH, kind) + b"}")


def test_many_shallow_containers_are_not_too_deep() -> None:
    # More brackets than the bound, but side by side: the exact measure says shallow.
    raw = dumps({"a": [[1]] * 200, "b": [{"c": []}] * 200, "s": "[[[[{{{{" * 40})
    assert len(json_object(raw)["a"]) == 200


@pytest.mark.parametrize("depth", [65, 500, 950, 3000])
@pytest.mark.parametrize("kind", ["array", "object"])
def test_a_deep_claim_is_malformed_before_the_signature(
    signer: Signer, depth: int, kind: str
) -> None:
    # ~1000 deep exceeds what the C scanner itself reads (RecursionError): refused the same.
    payload = b'{"iss":"https://issuer.test","deep":' + nested(depth, kind) + b"}"
    with pytest.raises(InvalidTokenError) as refused:
        parse(forge({"alg": "RS256"}, payload, signer))
    assert refused.value.reason is Reason.MALFORMED
    assert "nested more than 64 deep" in str(refused.value.__cause__)
