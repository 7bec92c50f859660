"""The token endpoint's side of DPoP (RFC 9449 §5): a LocalIssuer checks the proof a token
request carries, with PyJWT (no bearerguard code: the verifier is tested against it), and binds
the token it issues to the proof's key (`cnf.jkt`, RFC 7638 thumbprint)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt

# Asymmetric JWS algorithms (RFC 9449 §4.2: never none, never a MAC).
DPOP_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
MAX_AGE = 300  # seconds a proof's iat may be away from now, either way: a test AS is lenient


def proof_jkt(proofs: list[str], *, url: str, now: float) -> str:
    """The thumbprint of the key of a token request's one DPoP proof; `ValueError` if the proof
    is not one for a POST to `url` (RFC 9449 §4.3, without replay tracking)."""
    if len(proofs) != 1:
        raise ValueError("exactly one DPoP proof is required")
    try:
        header = jwt.get_unverified_header(proofs[0])
        jwk, alg = header.get("jwk"), header.get("alg")
        if header.get("typ") != "dpop+jwt" or alg not in DPOP_ALGORITHMS or type(jwk) is not dict:
            raise ValueError("typ, alg or jwk")
        if "d" in jwk or jwk.get("kty") not in _MEMBERS:
            raise ValueError("not a public key")
        key = jwt.PyJWK(jwk, alg)
        claims: dict[str, Any] = jwt.decode(
            proofs[0], key.key, algorithms=[alg], options={"require": ["jti", "iat"]}
        )
    except jwt.PyJWTError as exc:
        raise ValueError(str(exc)) from None
    if claims.get("htm") != "POST" or claims.get("htu") != url:
        raise ValueError("htm or htu")
    if not abs(claims["iat"] - now) <= MAX_AGE:
        raise ValueError("iat")
    canonical = json.dumps(
        {name: jwk[name] for name in _MEMBERS[jwk["kty"]]}, separators=(",", ":")
    )
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    )
