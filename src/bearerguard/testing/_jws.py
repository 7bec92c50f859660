"""The signing keys of a LocalIssuer and the compact JWS it signs by hand."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ._http import json_bytes

_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVES: dict[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}
_HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any  # a cryptography private key, or the shared secret (bytes) for HS*
    published: bool = True

    @property
    def symmetric(self) -> bool:
        return isinstance(self.private, bytes)

    def verification_key(self) -> Any:
        return self.private if self.symmetric else self.private.public_key()

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk = dict(algorithm.to_jwk(self.private.public_key(), as_dict=True))
        jwk.pop("key_ops", None)  # RFC 7517 §4.3: "use" and "key_ops" should not be mixed
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


def generate_key(alg: str) -> SigningKey:
    private: Any
    if alg in _RSA_ALGORITHMS:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg in _EC_CURVES:
        private = ec.generate_private_key(_EC_CURVES[alg])
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif alg in _HMAC_KEY_BYTES:
        private = secrets.token_bytes(_HMAC_KEY_BYTES[alg])
    else:
        raise ValueError(f"unsupported algorithm {alg!r}")
    return SigningKey(f"{alg.lower()}-{secrets.token_hex(4)}", alg, private)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_jws(header: Mapping[str, Any], payload: Mapping[str, Any], key: Any) -> str:
    """Sign by hand (not ``jwt.encode``) so that every header member is emitted verbatim."""
    signing_input = f"{b64url(json_bytes(header))}.{b64url(json_bytes(payload))}"
    signature = b""
    if header.get("alg", "none") != "none":
        algorithm = jwt.get_algorithm_by_name(header["alg"])
        signature = algorithm.sign(signing_input.encode("ascii"), algorithm.prepare_key(key))
    return f"{signing_input}.{b64url(signature)}"
