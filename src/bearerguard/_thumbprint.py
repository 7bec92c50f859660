"""Thumbprints that bind an access token to its sender: of a JWK (RFC 7638, for DPoP's `cnf.jkt`)
and of an X.509 client certificate (RFC 8705 §3.1, `cnf["x5t#S256"]`).

Also the parsers for a client certificate that a TLS-terminating proxy forwards in a header: a
PEM certificate, plain or URL-escaped (nginx's `$ssl_client_escaped_cert`), and Envoy's
`x-forwarded-client-cert`. They only parse; whether such a header is to be believed (it is,
only from a proxy that sets it and strips the client's own) is configuration, decided elsewhere.
Every malformed input is a `CertificateFormatError`, whose message never quotes the input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from cryptography import x509

from ._errors import BearerGuardError

# RFC 7638 §3.2: the members each key type's thumbprint covers, in lexicographic order; RFC 8037
# §2 for OKP. Symmetric keys (`oct`) have no business in a proof of possession.
THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
_CURVES = {"EC": frozenset({"P-256", "P-384", "P-521"}), "OKP": frozenset({"Ed25519", "Ed448"})}
# Private and symmetric key members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# The key material is base64url (RFC 7518 §6): checked, so the canonical JSON needs no escaping.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_MAX_MEMBER = 2048  # characters: an RSA modulus of 8192 bits is 1366

# A forwarded certificate is ~1-2 KB as PEM; an XFCC header may add a chain and names.
MAX_PEM_CHARS = 16_384
MAX_XFCC_CHARS = 65_536
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"
_PEM_SPACE = str.maketrans("", "", " \t\r\n")
_SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")
# A quoted-string (RFC 9110 §5.6.4): a backslash escapes any character, a quote ends it.
_QUOTED = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # unrolled: no per-character branch
_ESCAPED = re.compile(r"\\(.)", re.S)


class CertificateFormatError(BearerGuardError, ValueError):
    """A forwarded client certificate header is malformed (the message never quotes it)."""


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_members(jwk: Mapping[str, Any]) -> tuple[str, ...]:
    """The values of the members RFC 7638 hashes for `jwk`, in their lexicographic order.

    `ValueError` for a key type other than RSA, EC (P-256/384/521) and OKP (Ed25519/Ed448), a
    private or symmetric member, or a required member that is missing or not base64url.
    """
    kty = jwk.get("kty")
    if type(kty) is not str or kty not in THUMBPRINT_MEMBERS:
        raise ValueError("unsupported key type")
    if not _PRIVATE.isdisjoint(jwk):
        raise ValueError("a private key member is present")
    values: list[str] = []
    for name in THUMBPRINT_MEMBERS[kty]:
        value = jwk.get(name)
        if type(value) is not str:
            raise ValueError(f"{name} is missing or not a string")
        if name == "crv":
            if value not in _CURVES[kty]:
                raise ValueError("unsupported curve")
        elif name != "kty" and (len(value) > _MAX_MEMBER or not _BASE64URL.fullmatch(value)):
            raise ValueError(f"{name} is not base64url")
        values.append(value)
    return tuple(values)


def members_thumbprint(members: tuple[str, ...]) -> str:
    """The RFC 7638 SHA-256 thumbprint of what `jwk_members` returned."""
    names = THUMBPRINT_MEMBERS[
        members[1]
    ]  # kty is second in each list: (e, kty, n), (crv, kty, ...)
    # Checked base64url and fixed names: the canonical JSON needs no escaping (RFC 7638 §3.3).
    canonical = "{" + ",".join(f'"{n}":"{v}"' for n, v in zip(names, members, strict=True)) + "}"
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The JWK SHA-256 Thumbprint of a public key (RFC 7638 §3), as DPoP's `jkt` (RFC 9449 §6.1).

    `ValueError` for anything but a public RSA, EC or OKP key (see `jwk_members`).
    """
    return members_thumbprint(jwk_members(jwk))


def cert_thumbprint(der: bytes) -> str:
    """The X.509 Certificate SHA-256 Thumbprint of a DER certificate (RFC 8705 §3.1)."""
    return b64url(hashlib.sha256(der).digest())


def pem_certificate(text: str) -> bytes:
    """The DER bytes of one PEM certificate, given plain or URL-escaped (`%0A` for newlines, as
    nginx's `$ssl_client_escaped_cert`); `CertificateFormatError` unless it is exactly one
    well-formed X.509 certificate."""
    if len(text) > MAX_PEM_CHARS:
        raise CertificateFormatError("the certificate is too large")
    if "%" in text:
        try:  # never unquote_plus: "+" is a base64 character
            text = unquote(text, errors="strict")
        except UnicodeDecodeError:
            raise CertificateFormatError("the certificate is not URL-escaped UTF-8") from None
    text = text.strip()
    if not (text.isascii() and text.startswith(_PEM_BEGIN) and text.endswith(_PEM_END)):
        raise CertificateFormatError("not a PEM certificate")
    body = text[len(_PEM_BEGIN) : -len(_PEM_END)]
    try:  # strict base64 also refuses a second BEGIN or END line: a chain, or junk
        der = binascii.a2b_base64(body.translate(_PEM_SPACE), strict_mode=True)
    except binascii.Error:
        raise CertificateFormatError("the PEM body is not base64") from None
    return _certificate(der)


def _certificate(der: bytes) -> bytes:
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateFormatError("not an X.509 certificate") from None
    return der


def xfcc_thumbprint(value: str) -> str:
    """The client certificate's x5t#S256 from Envoy's `x-forwarded-client-cert` header.

    The header must hold exactly one element (Envoy's `SANITIZE_SET`: the proxy replaced what
    the client sent), with `Hash=` (hex SHA-256 of the DER certificate), `Cert=` (the URL-encoded
    PEM certificate) or both, which must then agree. `CertificateFormatError` otherwise.
    """
    if len(value) > MAX_XFCC_CHARS:
        raise CertificateFormatError("the header is too large")
    elements = _split(value, ",")
    if len(elements) != 1:
        raise CertificateFormatError("not exactly one certificate element")
    pairs: dict[str, str] = {}
    for pair in _split(elements[0], ";"):
        key, sep, raw = pair.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise CertificateFormatError("not a key=value pair")
        if key in ("hash", "cert"):
            if key in pairs:
                raise CertificateFormatError(f"{key} given twice")
            pairs[key] = _unquoted(raw.strip())
    digest = pairs.get("hash")
    if digest is not None and not _SHA256_HEX.fullmatch(digest):
        raise CertificateFormatError("Hash is not a SHA-256 hex digest")
    if "cert" in pairs:
        thumbprint = cert_thumbprint(pem_certificate(pairs["cert"]))
        if digest is not None and b64url(bytes.fromhex(digest)) != thumbprint:
            raise CertificateFormatError("Hash and Cert disagree")
        return thumbprint
    if digest is None:
        raise CertificateFormatError("neither Hash nor Cert is present")
    return b64url(bytes.fromhex(digest))


def client_thumbprint(certificate: str) -> str:
    """The x5t#S256 of a request's client certificate, as `Credentials.certificate` carries it:
    a PEM certificate, plain or URL-escaped (what TLS servers and nginx give), or an Envoy
    `x-forwarded-client-cert` value (`xfcc_thumbprint`). The two are told apart by their
    grammar: a PEM certificate starts with its `-----BEGIN` line, an XFCC element with a key
    (`Hash=`, `Cert=`, `By=`...), never with `-`. `CertificateFormatError` if neither fits.
    """
    if certificate.lstrip().startswith("-"):
        return cert_thumbprint(pem_certificate(certificate))
    return xfcc_thumbprint(certificate)


def _split(text: str, separator: str) -> list[str]:
    """Split on `separator` outside double quotes; inside them a backslash escapes the next
    character. Quoted values are skipped by one regular expression each, not character by
    character: a `Cert=` value is a kilobyte or two (a Python loop over it cost ~80 µs)."""
    if '"' not in text:
        return text.split(separator)
    parts: list[str] = []
    start = position = 0
    while True:
        quote, split = text.find('"', position), text.find(separator, position)
        if split >= 0 and (quote < 0 or split < quote):
            parts.append(text[start:split])
            start = position = split + 1
        elif quote >= 0:
            quoted = _QUOTED.match(text, quote)
            if quoted is None:
                raise CertificateFormatError("an unterminated quoted value")
            position = quoted.end()
        else:
            parts.append(text[start:])
            return parts


def _unquoted(raw: str) -> str:
    if not raw.startswith('"'):
        return raw  # a stray quote or backslash fails the Hash or Cert syntax after
    if not _QUOTED.fullmatch(raw):
        raise CertificateFormatError("text after a quoted value")
    inner = raw[1:-1]
    return _ESCAPED.sub(r"\1", inner) if "\\" in inner else inner
