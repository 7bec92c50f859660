from __future__ import annotations

import hmac
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bearerguard._keys import Key, KeySet, import_jwk

from ..helpers import Signer, public_jwk


def test_keyset_indexes_by_kid_and_reuses_unchanged_keys(signer: Signer) -> None:
    doc = signer.jwks()
    first = KeySet.from_document(doc, fetched_at=0, ttl=300)
    assert first.kids == {"rs256-1", "ps256-1", "es256-1", "eddsa-1"}
    rs = first.find("rs256-1", "RS256")
    assert rs is not None
    second = KeySet.from_document(doc, fetched_at=10, ttl=300, previous=first)
    assert second.find("rs256-1", "RS256") is rs  # imported once, identity kept across fetches


@pytest.mark.parametrize(
    ("alg", "kid", "ok"),
    [
        ("RS256", "rs256-1", True),
        ("PS256", "rs256-1", True),  # the same RSA key may serve RS* and PS*
        ("ES256", "rs256-1", False),  # kty mismatch
        ("ES384", "es256-1", False),  # crv mismatch: ES384 needs P-384
        ("ES256", "es256-1", True),
        ("EdDSA", "eddsa-1", True),
        ("HS256", "rs256-1", False),  # never HMAC with a public key
    ],
)
def test_key_accepts_only_matching_algorithms(signer: Signer, alg: str, kid: str, ok: bool) -> None:
    keys = KeySet.from_document(signer.jwks(), fetched_at=0, ttl=300)
    key = keys.by_kid.get(kid)
    assert key is not None
    assert key.accepts(alg) is ok


def test_key_alg_member_pins_the_algorithm(signer: Signer) -> None:
    key = import_jwk(public_jwk(signer.keys["RS256"], "RS256", "k") | {"alg": "RS256"})
    assert key.accepts("RS256")
    assert not key.accepts("PS256")


@pytest.mark.parametrize(
    "change",
    [
        {"use": "enc"},
        {"key_ops": ["encrypt"]},
        {"kty": "oct", "k": "c2VjcmV0"},  # symmetric keys are never taken from a JWKS
        {"alg": "none"},
        {"kid": 5},
        {"n": "AQAB"},  # an RSA modulus that is far too short
        {"kty": "EC"},  # an RSA key labelled EC
    ],
)
def test_unusable_jwks_entries_are_skipped(signer: Signer, change: dict[str, Any]) -> None:
    bad = public_jwk(signer.keys["RS256"], "RS256", "bad") | change
    good = public_jwk(signer.keys["ES256"], "ES256", "good")
    keys = KeySet.from_document({"keys": [bad, good, "junk"]}, fetched_at=0, ttl=1)
    assert keys.kids == {"good"}


def test_short_rsa_keys_are_refused() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="2048"):
        import_jwk(public_jwk(short, "RS256", "short"))


def test_private_members_are_never_imported() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(private, "ES256", "k") | {"d": "AAAA"}
    key = import_jwk(jwk)
    assert isinstance(key.material, ec.EllipticCurvePublicKey)


def test_token_without_kid_uses_the_only_fitting_key(signer: Signer) -> None:
    keys = KeySet.from_document(signer.jwks(), fetched_at=0, ttl=1)
    es = keys.find(None, "ES256")
    assert es is not None and es.kid == "es256-1"
    assert keys.find(None, "RS256") is None  # two RSA keys fit RS256: ambiguous, never guess


@pytest.mark.parametrize("document", [[], {"keys": {}}, {"nokeys": []}, "x"])
def test_keyset_refuses_what_is_not_a_jwks(document: Any) -> None:
    with pytest.raises(ValueError, match="JWK Set"):
        KeySet.from_document(document, fetched_at=0, ttl=1)


@pytest.mark.parametrize(
    ("alg", "digest"), [("HS256", "sha256"), ("HS384", "sha384"), ("HS512", "sha512")]
)
def test_shared_secret_checks_hmac_from_threads(alg: str, digest: str) -> None:
    # Each check copies a prepared HMAC state: from many threads at once, every good signature
    # passes and every bad one fails (a shared state that moved would break both).
    secret = b"s" * 64
    key = Key.from_secret(secret)
    messages = [f"header.payload-{i}".encode() for i in range(200)]
    good = [hmac.digest(secret, m, digest) for m in messages]

    def check(i: int) -> tuple[bool, bool, bool]:
        bad = bytes([good[i][0] ^ 1]) + good[i][1:]
        return (
            key.verify(alg, messages[i], good[i]),
            key.verify(alg, messages[i], bad),
            key.verify(alg, messages[i], good[i][:-1]),
        )

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(check, range(200)))
    assert results == [(True, False, False)] * 200
    assert "s" * 8 not in repr(key) + repr(key.material)  # the secret is never shown


@pytest.mark.parametrize(
    "change",
    [
        {"kty": ["RSA"]},  # a list where RFC 7517 says string: TypeError (unhashable) before
        {"kty": {"RSA": 1}},
        {"alg": ["RS256"]},
        {"alg": {"RS256": True}},
        {"crv": ["Ed25519"]},
        {"use": ["sig"]},
        {"kid": ["bad"]},
        {"kty": 1},
        {"alg": 256},
        {"n": ["AQAB"]},
        {"e": {"v": "AQAB"}},
    ],
)
def test_a_member_of_the_wrong_type_skips_that_key_only(
    signer: Signer, change: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    bad = public_jwk(signer.keys["RS256"], "RS256", "bad") | change
    if "crv" in change:
        bad = public_jwk(signer.keys["EdDSA"], "EdDSA", "bad") | change
    good = public_jwk(signer.keys["ES256"], "ES256", "good")
    with caplog.at_level("INFO", logger="bearerguard.jwks"):
        keys = KeySet.from_document({"keys": [bad, good]}, fetched_at=0, ttl=1, source="jwks")
    assert keys.kids == {"good"}
    skipped = [r.getMessage() for r in caplog.records if "skipping JWK" in r.getMessage()]
    assert len(skipped) == 1
    assert skipped[0].startswith("skipping JWK kid=") and "from jwks" in skipped[0]


@pytest.mark.parametrize("member", ["kty", "alg", "crv", "use", "kid"])
def test_import_jwk_refuses_a_list_with_a_value_error(signer: Signer, member: str) -> None:
    jwk = public_jwk(signer.keys["EdDSA"], "EdDSA", "k") | {member: ["x"]}
    with pytest.raises(ValueError, match=f"{member} is not a string"):
        import_jwk(jwk)
