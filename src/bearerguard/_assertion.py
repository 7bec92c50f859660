"""Client authentication to the authorization server: `client_secret_basic`'s header (RFC 6749
§2.3.1), and `private_key_jwt` (RFC 7523 §2.2, §3; OpenID Connect Core §9).

The resource server proves who it is to the authorization server with a short-lived JWT signed
by its own private key: `iss` = `sub` = its client_id, a fresh `jti` per request, and the `aud`
that this authorization server accepts (servers disagree, see `assertion_audience`).
"""

from __future__ import annotations

import base64
import secrets
from typing import TypeAlias, cast
from urllib.parse import quote_plus

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ._errors import ConfigurationError


def basic_authorization(client_id: str, secret: str) -> str:
    """The `Authorization` value of `client_secret_basic` (RFC 6749 §2.3.1): id and secret are
    form-urlencoded *before* base64, so a ':' or a non-ASCII character in either survives."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
ASSERTION_LIFETIME = 60  # seconds: long enough for the POST, short enough to be useless later
_RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
SIGNING_ALGORITHMS = (*_RSA, *_CURVES, "EdDSA")
_MIN_RSA_BITS = 2048  # RFC 7518 §3.3
# The names `private_key_audience` accepts besides an explicit URL.
AUDIENCE_ENDPOINT, AUDIENCE_ISSUER = "endpoint", "issuer"


def signing_key(value: object, alg: str, owner: str) -> PrivateKey:
    """The private key of `value` (a key object, or an unencrypted PEM), checked against `alg`.

    Errors name the setting and never the key material: a PEM parse error is reported as such.
    """
    if alg not in SIGNING_ALGORITHMS:
        raise ConfigurationError(
            f"{owner}: private_key_alg must be one of {SIGNING_ALGORITHMS}, got {alg!r}",
            field="private_key_alg",
        )
    if value is None:
        raise ConfigurationError(
            f"{owner}: private_key_jwt needs a private_key", field="private_key"
        )
    key = value
    if isinstance(value, str | bytes):
        data = value.encode() if isinstance(value, str) else value
        try:
            key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigurationError(
                f"{owner}: private_key is not an unencrypted PEM private key", field="private_key"
            ) from None
    if alg in _RSA:
        fits = isinstance(key, rsa.RSAPrivateKey) and key.key_size >= _MIN_RSA_BITS
        wanted = f"an RSA key of at least {_MIN_RSA_BITS} bits"
    elif alg in _CURVES:
        fits = isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, _CURVES[alg])
        wanted = f"an EC key on {_CURVES[alg].name}"
    else:
        fits = isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        wanted = "an Ed25519 or Ed448 key"
    if not fits:
        raise ConfigurationError(
            f"{owner}: private_key_alg {alg} needs {wanted}, got a {type(key).__name__}",
            field="private_key",
        )
    return cast(PrivateKey, key)


def assertion_audience(setting: str | None, *, issuer: str | None, endpoint: str) -> str:
    """The `aud` of an assertion POSTed to `endpoint`, as `private_key_audience` asks.

    RFC 7523 §3 lets it be any name of the AS, the token endpoint URL included; OIDC Core §9 says
    the token endpoint; Okta wants the URL actually called; draft-ietf-oauth-rfc7523bis the
    issuer identifier alone, since endpoint URLs (taken from metadata) let one AS obtain
    assertions that another accepts. So the default (None) is the issuer when one is configured,
    and the URL we POST to, the only name of the AS we have, when none is.
    """
    if setting == AUDIENCE_ENDPOINT:
        return endpoint
    if setting is None or setting == AUDIENCE_ISSUER:
        return issuer or endpoint  # "issuer" is refused at init when there is none
    return setting  # an explicit URL, checked at init


def new_jti() -> str:
    """A JWT ID no one can guess or repeat (RFC 7519 §4.1.7): 128 random bits."""
    return secrets.token_urlsafe(16)


def client_assertion(
    *,
    client_id: str,
    audience: str,
    key: PrivateKey,
    alg: str,
    kid: str | None,
    now: float,
    jti: str,
) -> str:
    """The signed JWT of RFC 7523 §3 that authenticates `client_id` to `audience`."""
    issued = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
    }
    return jwt.encode(claims, key, algorithm=alg, headers=None if kid is None else {"kid": kid})
