"""Every refusal of the verifier, for RS256, PS256, ES256 and EdDSA, through both twins.

Tokens are forged byte by byte and signed with the local issuer's real keys, so each case
isolates one defect; the server finds its keys over HTTP on 127.0.0.1 by discovery.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from bearerguard import (
    ASYMMETRIC_ALGORITHMS,
    InvalidRequestError,
    InvalidTokenError,
    Issuer,
    Reason,
    ResourceServer,
)
from bearerguard.testing import LocalIssuer

from ..conftest import Twin
from ..helpers import ASYMMETRIC, b64, b64url_decode_for_tests, dumps, generate, sign_raw

OTHER_FAMILY = {"RS256": "ES256", "PS256": "ES256", "ES256": "RS256", "EdDSA": "ES256"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(algorithms=ASYMMETRIC) as local:
        yield local


@dataclass(frozen=True)
class Case:
    expect: Reason | None  # None: accepted
    header: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    raw_header: bytes | None = None
    raw_claims: bytes | None = None
    server: dict[str, Any] = field(default_factory=dict)
    build: Callable[[LocalIssuer, str, str], str] | None = None  # (issuer, alg, token) -> token


def _now() -> int:
    return int(time.time())


def _alg_none(issuer: LocalIssuer, alg: str, token: str) -> str:
    head = b64(dumps({"alg": "none", "typ": "at+jwt"}))
    return f"{head}.{token.split('.')[1]}."


def _alg_none_signed(issuer: LocalIssuer, alg: str, token: str) -> str:
    _, payload, signature = token.split(".")
    return f"{b64(dumps({'alg': 'none', 'kid': issuer.kid(alg)}))}.{payload}.{signature}"


def _hs256_with_public_key(issuer: LocalIssuer, alg: str, token: str) -> str:
    # The classic key-confusion attack: HMAC keyed with the issuer's published public key.
    public = issuer.private_key(issuer.kid(alg)).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64(dumps({"alg": "HS256", "kid": issuer.kid(alg)}))
    payload = token.split(".")[1]
    mac = hmac.new(pem, f"{head}.{payload}".encode(), "sha256").digest()
    return f"{head}.{payload}.{b64(mac)}"


def _key_of_other_family(issuer: LocalIssuer, alg: str, token: str) -> str:
    other = OTHER_FAMILY[alg]
    header = dumps({"alg": other, "kid": issuer.kid(alg)})  # names our key, signs with another
    payload = b64url_decode_for_tests(token.split(".")[1].encode())
    return sign_raw(header, payload, issuer.private_key(issuer.kid(other)), other)


def _tampered(issuer: LocalIssuer, alg: str, token: str) -> str:
    head, _, signature = token.split(".")
    forged = b64(dumps({"iss": issuer.issuer, "aud": issuer.audience, "exp": _now() + 60,
                        "scope": "admin"}))  # fmt: skip
    return f"{head}.{forged}.{signature}"


def _signed_by_stranger(issuer: LocalIssuer, alg: str, token: str) -> str:
    head, payload, _ = token.split(".")
    return sign_raw(
        b64url_decode_for_tests(head.encode()),
        b64url_decode_for_tests(payload.encode()),
        generate(alg),
        alg,
    )


def _truncated(issuer: LocalIssuer, alg: str, token: str) -> str:
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{b64(b64url_decode_for_tests(signature.encode())[:-1])}"


def _padded(issuer: LocalIssuer, alg: str, token: str) -> str:
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{b64(b64url_decode_for_tests(signature.encode()) + bytes(1))}"


CASES: dict[str, Case] = {
    "valid": Case(None),
    "aud array naming us": Case(None, claims={"aud": ["other", "AUDIENCE"]}),
    "too large": Case(Reason.TOO_LARGE, claims={"pad": "x" * 9000}),
    "alg none, no signature": Case(Reason.MALFORMED, build=_alg_none),
    "alg none, with signature": Case(Reason.ALGORITHM, build=_alg_none_signed),
    "alg not in the allow-list": Case(Reason.ALGORITHM, server={"exclude": True}),
    "HS256 keyed with the public key": Case(Reason.ALGORITHM, build=_hs256_with_public_key),
    "key of another type": Case(Reason.ALGORITHM, build=_key_of_other_family),
    "crit": Case(Reason.UNSUPPORTED_HEADER, header={"crit": ["exp"], "exp": 1}),
    "b64 false": Case(Reason.UNSUPPORTED_HEADER, header={"crit": ["b64"], "b64": False}),
    "jku": Case(Reason.UNSUPPORTED_HEADER, header={"jku": "https://evil.test/jwks"}),
    "jwk": Case(Reason.UNSUPPORTED_HEADER, header={"jwk": {"kty": "oct", "k": "AAAA"}}),
    "x5u": Case(Reason.UNSUPPORTED_HEADER, header={"x5u": "https://evil.test/x509"}),
    "x5c": Case(Reason.UNSUPPORTED_HEADER, header={"x5c": ["MIIBIjAN"]}),
    "duplicate header member": Case(
        Reason.MALFORMED, raw_header=b'{"alg":"ALG","kid":"KID","kid":"KID"}'
    ),
    "duplicate claim": Case(
        Reason.MALFORMED, raw_claims=b'{"iss":"ISS","aud":"AUDIENCE","aud":"x","exp":EXP}'
    ),
    "exp a string": Case(Reason.CLAIM_TYPE, claims={"exp": "EXP"}),
    "exp a boolean": Case(Reason.CLAIM_TYPE, claims={"exp": True}),
    "nbf a string": Case(Reason.CLAIM_TYPE, claims={"nbf": "0"}),
    "iat a string": Case(Reason.CLAIM_TYPE, claims={"iat": "0"}),
    "aud a number": Case(Reason.CLAIM_TYPE, claims={"aud": 42}),
    "aud not ours": Case(Reason.AUDIENCE, claims={"aud": "https://other.api"}),
    "aud missing": Case(Reason.MISSING_CLAIM, claims={"aud": None}),
    "exp missing": Case(Reason.MISSING_CLAIM, claims={"exp": None}),
    "expired": Case(Reason.EXPIRED, claims={"exp": -3600}),
    "nbf in the future": Case(Reason.NOT_YET_VALID, claims={"nbf": 3600}),
    "iat in the future": Case(Reason.ISSUED_IN_FUTURE, claims={"iat": 3600}),
    "other issuer": Case(Reason.UNKNOWN_ISSUER, claims={"iss": "https://evil.test"}),
    "unknown kid": Case(Reason.UNKNOWN_KID, header={"kid": "no-such-key"}),
    "tampered payload": Case(Reason.BAD_SIGNATURE, build=_tampered),
    "signed by a stranger": Case(Reason.BAD_SIGNATURE, build=_signed_by_stranger),
    "truncated signature": Case(Reason.BAD_SIGNATURE, build=_truncated),
    "signature with extra bytes": Case(Reason.BAD_SIGNATURE, build=_padded),
    "RFC 9068 mode, typ JWT": Case(Reason.TYPE, header={"typ": "JWT"}, server={"rfc9068": True}),
    "RFC 9068 mode, no client_id": Case(
        Reason.MISSING_CLAIM, claims={"client_id": None}, server={"rfc9068": True}
    ),
}


def token_for(issuer: LocalIssuer, alg: str, case: Case) -> str:
    """A valid token for `alg`, changed as the case says. Integer times are relative to now;
    the placeholders ALG, KID, ISS, AUDIENCE and EXP are filled into the JSON text."""
    now = _now()
    claims: dict[str, Any] = {
        "iss": "ISS", "sub": "client-1", "client_id": "client-1", "aud": "AUDIENCE",
        "iat": 0, "exp": 300, "jti": "j1",
    }  # fmt: skip
    for name, value in case.claims.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    for name in ("exp", "nbf", "iat"):
        if type(claims.get(name)) is int:
            claims[name] += now
    header = {"alg": "ALG", "typ": "at+jwt", "kid": "KID"} | case.header
    values = {
        "ALG": alg, "KID": issuer.kid(alg), "ISS": issuer.issuer, "AUDIENCE": issuer.audience,
        "EXP": str(now + 300),
    }  # fmt: skip
    raw_header = _fill(case.raw_header or dumps(header), values)
    raw_claims = _fill(case.raw_claims or dumps(claims), values)
    token = sign_raw(raw_header, raw_claims, issuer.private_key(issuer.kid(alg)), alg)
    return case.build(issuer, alg, token) if case.build else token


def _fill(raw: bytes, values: dict[str, str]) -> bytes:
    text = raw.decode()
    for name, value in values.items():
        text = text.replace(name, value)
    return text.encode()


@pytest.mark.parametrize("alg", ASYMMETRIC)
@pytest.mark.parametrize("name", CASES)
def test_refusal(issuer: LocalIssuer, twin: Twin, alg: str, name: str) -> None:
    case = CASES[name]
    options: dict[str, Any] = dict(case.server)
    if options.pop("exclude", False):
        options["algorithms"] = [a for a in ASYMMETRIC_ALGORITHMS if a != alg]
    config = Issuer(issuer=issuer.issuer, audience=issuer.audience, **options)
    server = ResourceServer(config)
    token = token_for(issuer, alg, case)
    if case.expect is None:
        access = twin.verify(server, token)
        assert access.client_id == "client-1"
        return
    with pytest.raises(InvalidTokenError) as info:
        twin.verify(server, token)
    assert info.value.reason is case.expect, info.value.reason
    assert str(info.value) == case.expect.value  # a fixed description, never library text


def test_refusal_header_with_two_tokens_is_invalid_request(issuer: LocalIssuer, twin: Twin) -> None:
    server = ResourceServer(Issuer(issuer=issuer.issuer, audience=issuer.audience))
    with pytest.raises(InvalidRequestError):
        twin.authenticate(server, "Bearer a.b.c, Bearer d.e.f")
