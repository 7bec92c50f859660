"""Verification keys: one imported JWK (`Key`) and an immutable snapshot of a JWKS (`KeySet`).

A JWK is imported once per fetch; a key whose JWK did not change between fetches keeps its `Key`
object, so identity (`is`) tells a cached verification that its key is still published. Only public
verification keys are imported (RFC 7517 §4.2, §4.3): symmetric keys in a fetched JWKS, keys for
encryption, and RSA keys under 2048 bits (RFC 7518 §3.3) are skipped.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

from ._logfields import fields
from ._redact import clip, shown

logger = logging.getLogger("bearerguard.jwks")

_ALGORITHMS: dict[str, Algorithm] = get_default_algorithms()
# What each algorithm needs of a key: (kty, crv or None). RFC 7518 §3.1, RFC 8037 §3.1.
KEY_TYPES: dict[str, tuple[str, str | None]] = {
    **{f"RS{n}": ("RSA", None) for n in (256, 384, 512)},
    **{f"PS{n}": ("RSA", None) for n in (256, 384, 512)},
    **{f"HS{n}": ("oct", None) for n in (256, 384, 512)},
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),  # Ed25519 or Ed448
}
SUPPORTED_ALGORITHMS = frozenset(KEY_TYPES)
# The members that make up each key type's public key; anything else (notably private `d`) is
# dropped before import.
_PUBLIC_MEMBERS = {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x")}
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})
_STRING_MEMBERS = ("kty", "kid", "alg", "use", "crv")
_MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True, eq=False)
class Key:
    """One imported verification key."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None  # the JWK's own `alg`, which pins the key to one algorithm (RFC 7517 §4.4)
    material: Any = field(repr=False)
    jwk: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def accepts(self, alg: str) -> bool:
        """Can this key verify `alg`? Both the key type and the JWK's own `alg` must agree."""
        kty, crv = KEY_TYPES.get(alg, ("", None))
        if kty != self.kty or (self.alg is not None and self.alg != alg):
            return False
        if kty == "OKP":
            return self.crv in _OKP_CURVES
        return crv is None or crv == self.crv

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """Check a signature; `accepts(alg)` must hold."""
        return _SIGNATURES[alg](self.material, signing_input, signature)

    @classmethod
    def from_secret(cls, secret: bytes) -> Key:
        """A shared secret for HS256/384/512 (configured explicitly, never fetched)."""
        return cls(kid=None, kty="oct", crv=None, alg=None, material=_Secret(secret))


class _Secret:
    """A shared secret with its HMAC key schedule done once per hash (RFC 2104's inner and
    outer keys): each check copies the prepared state instead of starting over (~1 µs less)."""

    __slots__ = ("_prepared",)

    def __init__(self, secret: bytes) -> None:
        self._prepared = {name: hmac.new(secret, digestmod=name) for name in _HMAC_HASHES}

    def verify(self, digest: str, signing_input: bytes, signature: bytes) -> bool:
        mac = self._prepared[digest].copy()  # the copy is thread-safe; the original never moves
        mac.update(signing_input)
        return hmac.compare_digest(mac.digest(), signature)

    def __repr__(self) -> str:
        return "_Secret(...)"  # never the secret


# The signature primitive of each algorithm, on `cryptography` directly, with the padding and
# hash objects made once (PyJWT's algorithm objects make them on every call). RFC 7518 §3.
Signature = Callable[[Any, bytes, bytes], bool]
_HMAC_HASHES = ("sha256", "sha384", "sha512")
_HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


def _hmac(digest: str) -> Signature:
    return lambda secret, data, signature: cast(_Secret, secret).verify(digest, data, signature)


def _raising(verify: Callable[[Any, bytes, bytes], None]) -> Signature:
    def check(key: Any, data: bytes, signature: bytes) -> bool:
        try:
            verify(key, data, signature)
        except InvalidSignature:
            return False
        return True

    return check


def _rsa(pad: AsymmetricPadding, hash_: hashes.HashAlgorithm) -> Signature:
    return _raising(lambda key, data, signature: key.verify(signature, data, pad, hash_))


def _pss(hash_: hashes.HashAlgorithm) -> Signature:
    # RFC 7518 §3.5: MGF1 with the same hash, and a salt as long as the hash output.
    return _rsa(padding.PSS(mgf=padding.MGF1(hash_), salt_length=hash_.digest_size), hash_)


def _ecdsa(hash_: hashes.HashAlgorithm, size: int) -> Signature:
    # RFC 7518 §3.4: the signature is R and S, each `size` bytes big-endian; DER for OpenSSL.
    algorithm = ec.ECDSA(hash_)

    def verify(key: Any, data: bytes, signature: bytes) -> None:
        if len(signature) != 2 * size:
            raise InvalidSignature
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), data, algorithm)

    return _raising(verify)


_SIGNATURES: dict[str, Signature] = {
    **{f"HS{n}": _hmac(f"sha{n}") for n in _HASHES},
    **{f"RS{n}": _rsa(padding.PKCS1v15(), h) for n, h in _HASHES.items()},
    **{f"PS{n}": _pss(h) for n, h in _HASHES.items()},
    "ES256": _ecdsa(_HASHES["256"], 32),
    "ES384": _ecdsa(_HASHES["384"], 48),
    "ES512": _ecdsa(_HASHES["512"], 66),
    "EdDSA": _raising(lambda key, data, signature: key.verify(signature, data)),
}


def import_jwk(jwk: Mapping[str, Any]) -> Key:
    """Import one public JWK; `ValueError` says why it cannot be used for verification.

    Whatever the JSON holds, `ValueError` is the only exception: the caller skips that key.
    """
    # RFC 7517 §4 and RFC 7518 §6: these members are strings. Checked first, so that a list or
    # an object in one of them is refused here rather than met by a set lookup or by PyJWT.
    for name in _STRING_MEMBERS:
        value = jwk.get(name)
        if value is not None and type(value) is not str:
            raise ValueError(f"{name} is not a string")
    kty, kid, alg = jwk.get("kty"), jwk.get("kid"), jwk.get("alg")
    if kty not in _PUBLIC_MEMBERS:
        raise ValueError(f"unsupported kty {kty!r}")
    if alg is not None and alg not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"unsupported alg {alg!r}")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("not a signature key")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise ValueError("key_ops does not allow verify")
    public = {"kty": kty} | {m: jwk[m] for m in _PUBLIC_MEMBERS[kty] if m in jwk}
    crv = public.get("crv")
    if kty == "OKP" and crv not in _OKP_CURVES:
        raise ValueError(f"unsupported curve {crv!r}")
    family = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}[kty]
    try:
        material = _ALGORITHMS[family].from_jwk(public)
    except (InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"invalid {kty} key") from exc
    if kty == "RSA" and material.key_size < _MIN_RSA_BITS:
        raise ValueError("RSA key shorter than 2048 bits")
    return Key(kid=kid, kty=kty, crv=crv, alg=alg, material=material, jwk=dict(jwk))


@dataclass(frozen=True, slots=True, eq=False)
class KeySet:
    """An immutable snapshot of one JWKS fetch, indexed by `kid`."""

    keys: tuple[Key, ...]
    fetched_at: float  # on the monotonic timer
    ttl: float
    # Both read on every verified-token cache hit, so stored rather than computed; by_kid is
    # never changed once built (the first key of a repeated kid wins).
    by_kid: dict[str | None, Key] = field(init=False, repr=False)
    expires_at: float = field(init=False)

    def __post_init__(self) -> None:
        by_kid: dict[str | None, Key] = {}
        for key in self.keys:
            by_kid.setdefault(key.kid, key)
        object.__setattr__(self, "by_kid", by_kid)
        object.__setattr__(self, "expires_at", self.fetched_at + self.ttl)

    @property
    def kids(self) -> frozenset[str | None]:
        return frozenset(self.by_kid)

    def find(self, kid: str | None, alg: str) -> Key | None:
        """The key for `kid` (O(1)); for a token without `kid`, the one key that fits `alg`."""
        if kid is not None:
            return self.by_kid.get(kid)
        candidates = [key for key in self.keys if key.accepts(alg)]
        return candidates[0] if len(candidates) == 1 else None  # ambiguous: refuse, never guess

    @classmethod
    def from_document(
        cls,
        document: object,
        *,
        fetched_at: float,
        ttl: float,
        previous: KeySet | None = None,
        source: str = "",
    ) -> KeySet:
        """Import a JWKS document (RFC 7517 §5), reusing unchanged keys of `previous`.

        Unusable keys are skipped with a log line; a document that is not a JWKS is a `ValueError`.
        """
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK Set")
        known = {_fingerprint(k.jwk): k for k in (previous.keys if previous else ())}
        keys: list[Key] = []
        for jwk in document["keys"]:
            if not isinstance(jwk, dict):
                logger.info("skipping a JWKS entry from %s: not a JSON object", source)
                continue
            reused = known.get(_fingerprint(jwk))
            if reused is not None:
                keys.append(reused)
                continue
            try:
                keys.append(import_jwk(jwk))
            except ValueError as exc:
                kid = jwk.get("kid")
                logger.info(
                    "skipping JWK kid=%s from %s: %s",
                    shown(kid),
                    source,
                    exc,
                    extra=fields("key_skipped", kid=clip(kid), upstream=source, error=str(exc)),
                )
        return cls(tuple(keys), fetched_at=fetched_at, ttl=ttl)


def _fingerprint(jwk: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), repr(v)) for k, v in jwk.items()))
