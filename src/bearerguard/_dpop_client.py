"""A DPoP client key for tests: it makes proofs (RFC 9449 §4.2), good ones and, asked, bad ones.

Like `testing.LocalIssuer`, it shares no code with the verifier (`_dpop`, `_thumbprint`): proofs
are signed with PyJWT and the key's thumbprint is computed here, so that tests check the verifier
against an independent implementation::

    key = DPoPKey("ES256")
    token = issuer.mint(cnf={"jkt": key.jkt})
    headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", url, token)}
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

__all__ = ["OMIT", "DPoPKey"]

OMIT: Any = object()  # as an override's value: leave that claim or header parameter out

_CURVES: dict[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
_ALGORITHMS = get_default_algorithms()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class DPoPKey:
    """A client's proof-of-possession key pair, for one JWS algorithm.

    `alg` is one of RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA (Ed25519; pass an
    Ed448 `private_key` for Ed448). `jwk` is the public JWK a proof carries, and `jkt` its
    RFC 7638 thumbprint, the value an authorization server puts in the token's `cnf.jkt`.
    """

    def __init__(self, alg: str = "ES256", *, private_key: Any = None) -> None:
        if private_key is None:
            private_key = _generate(alg)
        self.alg = alg
        self.private_key = private_key
        family = {"RS": "RS256", "PS": "RS256", "ES": "ES256", "Ed": "EdDSA"}[alg[:2]]
        self.jwk: dict[str, str] = _ALGORITHMS[family].to_jwk(
            private_key.public_key(), as_dict=True
        )
        canonical = {name: self.jwk[name] for name in _THUMBPRINT_MEMBERS[self.jwk["kty"]]}
        digest = hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).digest()
        self.jkt = _b64url(digest)

    def __repr__(self) -> str:
        return f"DPoPKey({self.alg!r}, jkt={self.jkt!r})"

    def proof(
        self,
        method: str,
        url: str,
        access_token: str | None = None,
        nonce: str | None = None,
        *,
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed DPoP proof for one request: `htm` = `method`, `htu` = `url` (give it without
        query), a fresh `jti`, `iat` now, `ath` for `access_token` and `nonce` when given.

        Keyword arguments replace claims (`iat=...`, `htu=...`, or a new claim); `header`
        replaces header parameters (`typ`, `alg`, `jwk`). `OMIT` as a value leaves one out.
        The signature always uses this key with `self.alg`, whatever `header` says.
        """
        payload: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if access_token is not None:
            payload["ath"] = _b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        if nonce is not None:
            payload["nonce"] = nonce
        payload = _apply(payload, claims)
        fields = _apply({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk}, header or {})
        signing_input = f"{_part(fields)}.{_part(payload)}".encode("ascii")
        return f"{signing_input.decode('ascii')}.{_b64url(self.sign(signing_input))}"

    def sign(self, signing_input: bytes) -> bytes:
        """A JWS signature of `signing_input` with this key (ECDSA as raw R||S, RFC 7518 §3.4)."""
        return _ALGORITHMS[self.alg].sign(signing_input, self.private_key)


def _apply(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not OMIT}


def _part(obj: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(obj, separators=(",", ":")).encode())


def _generate(alg: str) -> Any:
    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg in _CURVES:
        return ec.generate_private_key(_CURVES[alg])
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"DPoPKey: unsupported algorithm {alg!r}")
