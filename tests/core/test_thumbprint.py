"""RFC 7638 JWK thumbprints, RFC 8705 certificate thumbprints, and forwarded-certificate parsers."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from bearerguard._dpop_client import DPoPKey
from bearerguard._thumbprint import (
    MAX_PEM_CHARS,
    CertificateFormatError,
    _split,
    _unquoted,
    cert_thumbprint,
    jwk_thumbprint,
    pem_certificate,
    xfcc_thumbprint,
)

from ..helpers import b64

# RFC 7638 §3.1.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
    "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FD"
    "W2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQ"
    "Fh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
# RFC 9449 §4.2 Figure 4's key, whose thumbprint is §6.1 Figure 9's cnf.jkt.
RFC9449_JWK = {
    "kty": "EC",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    "crv": "P-256",
}
# RFC 8037 Appendix A.2/A.3.
RFC8037_JWK = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}


@pytest.mark.parametrize(
    ("jwk", "thumbprint"),
    [
        (RFC7638_JWK, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"),
        (RFC9449_JWK, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
        (RFC8037_JWK, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"),
    ],
)
def test_rfc_thumbprint_vectors(jwk: dict[str, str], thumbprint: str) -> None:
    assert jwk_thumbprint(jwk) == thumbprint
    # Optional members and member order do not change it (RFC 7638 §3.2, §3.3).
    extended = dict(reversed(list(jwk.items()))) | {"use": "sig", "kid": "other", "x5t": "z"}
    assert jwk_thumbprint(extended) == thumbprint


@pytest.mark.parametrize("alg", ["RS256", "ES384", "ES512", "EdDSA"])
def test_thumbprint_agrees_with_an_independent_computation(alg: str) -> None:
    key = DPoPKey(alg)
    assert jwk_thumbprint(key.jwk) == key.jkt


@pytest.mark.parametrize(
    ("jwk", "why"),
    [
        ({"kty": "oct", "k": "c2VjcmV0"}, "key type"),
        (RFC9449_JWK | {"d": "AAAA"}, "private"),
        (RFC7638_JWK | {"p": "AAAA"}, "private"),
        (RFC8037_JWK | {"d": "AAAA"}, "private"),
        ({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}, "curve"),
        ({"kty": "OKP", "crv": "X25519", "x": "AA"}, "curve"),
        ({"kty": "RSA", "n": "AQAB"}, "e is missing"),
        (RFC7638_JWK | {"e": 65537}, "e is missing or not a string"),
        (RFC9449_JWK | {"x": "l8tF rhx"}, "x is not base64url"),  # would need escaping
        (RFC9449_JWK | {"x": 'a","kty":"x'}, "x is not base64url"),
        ({"kty": ["RSA"]}, "key type"),
        ({}, "key type"),
    ],
)
def test_thumbprint_refuses_all_but_public_rsa_ec_okp(jwk: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        jwk_thumbprint(jwk)


# --- certificates -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'client, "one"; a=b')])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem_of(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_cert_thumbprint_is_base64url_sha256_of_the_der(cert: x509.Certificate) -> None:
    der = der_of(cert)
    assert cert_thumbprint(der) == b64(hashlib.sha256(der).digest())
    assert len(cert_thumbprint(der)) == 43


def test_pem_plain_and_url_escaped(cert: x509.Certificate) -> None:
    pem, der = pem_of(cert), der_of(cert)
    assert pem_certificate(pem) == der
    assert pem_certificate(pem.replace("\n", "\r\n")) == der
    assert pem_certificate(quote(pem)) == der  # nginx's $ssl_client_escaped_cert
    assert pem_certificate(quote(pem, safe="")) == der  # "+", "/" and "=" escaped too
    assert pem_certificate(pem.replace("\n", "\n\t")) == der  # $ssl_client_cert's old form


def test_pem_refusals(cert: x509.Certificate) -> None:
    pem = pem_of(cert)
    body = "".join(pem.splitlines()[1:-1])
    cases = [
        "",
        body,  # no markers
        pem + pem,  # a chain: which one?
        pem.replace("CERTIFICATE", "PRIVATE KEY"),
        pem.replace(body[10:20], "!!!!!!!!!!"),
        pem.replace(body[:8], ""),  # base64 of something that is not a certificate
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        quote(pem).replace("%0A", "%FF", 1),  # escaped bytes that are not UTF-8
        pem.replace("M", "\uff2d", 1),  # a full-width M
        "x" * (MAX_PEM_CHARS + 1),
    ]
    for text in cases:
        with pytest.raises(CertificateFormatError) as caught:
            pem_certificate(text)
        assert body[:16] not in str(caught.value)


def test_xfcc_hash_cert_or_both(cert: x509.Certificate) -> None:
    der = der_of(cert)
    thumbprint = cert_thumbprint(der)
    digest = hashlib.sha256(der).hexdigest()
    subject = 'Subject="CN=client\\, \\"one\\"\\; a=b"'
    cert_value = quote(pem_of(cert), safe="")
    for value in [
        f"Hash={digest}",
        f"By=spiffe://cluster.local/ns/a/sa/b;Hash={digest.upper()};{subject};URI=spiffe://x",
        f"hash={digest};DNS=a.test;DNS=b.test",
        f'Cert="{cert_value}"',
        f"Hash={digest};Cert={cert_value}",
        f'{subject};Cert="{cert_value}";Hash="{digest}"',
    ]:
        assert xfcc_thumbprint(value) == thumbprint, value


def test_xfcc_refusals(cert: x509.Certificate) -> None:
    der = der_of(cert)
    digest = hashlib.sha256(der).hexdigest()
    other = hashlib.sha256(b"other").hexdigest()
    cert_value = quote(pem_of(cert), safe="")
    for value in [
        "",
        f"Hash={digest},Hash={digest}",  # two elements: which proxy's client?
        f"Hash={digest};Hash={digest}",
        f"Hash={digest[:-1]}",
        f"Hash={digest}0",
        "Subject=x;URI=y",  # neither Hash nor Cert
        f"Hash={other};Cert={cert_value}",  # they disagree
        f'Hash="{digest}',  # unterminated
        f'Hash="{digest}"x',
        f"Hash={digest};justakey",
        f'Hash=a"b;Cert={cert_value}',
        "Cert=not-a-certificate",
        "x" * 70_000,
    ]:
        with pytest.raises(CertificateFormatError):
            xfcc_thumbprint(value)


def _reference_split(text: str, separator: str) -> list[str] | None:
    """The character-by-character splitter `_split` replaced (None: it refused the text)."""
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = quoted
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    if quoted or escaped:
        return None
    parts.append(text[start:])
    return parts


def _reference_unquoted(raw: str) -> str | None:
    if not raw.startswith('"'):
        return raw
    if len(raw) < 2 or not raw.endswith('"'):
        return None
    out, escaped = [], False
    for char in raw[1:-1]:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return None
        else:
            out.append(char)
    return None if escaped else "".join(out)


@settings(max_examples=500)
@given(st.text(st.sampled_from('ab,;"\\= \n'), max_size=40), st.sampled_from([",", ";"]))
def test_split_and_unquote_match_the_character_loop(text: str, separator: str) -> None:
    """The regular-expression splitter and unquoting agree with the plain character loop they
    replaced (kept here as the reference), whatever quotes, escapes and separators come."""
    try:
        parts: list[str] | None = _split(text, separator)
    except CertificateFormatError:
        parts = None
    assert parts == _reference_split(text, separator)
    for part in parts or ():
        try:
            value: str | None = _unquoted(part.strip())
        except CertificateFormatError:
            value = None
        assert value == _reference_unquoted(part.strip()), part
