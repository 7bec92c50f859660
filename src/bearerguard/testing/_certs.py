"""Self-signed client certificates for testing certificate-bound tokens (RFC 8705).

Built with `cryptography` and hashed with `hashlib` here, not with bearerguard's parsers, so the
verifier's thumbprints are tested against an independent computation.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ClientCertificate:
    """A self-signed client certificate and its private key, for tests.

    `x5t_s256` is its SHA-256 thumbprint (RFC 8705 §3.1), what `LocalIssuer.mint(x5t_s256=...)`
    binds a token to; `pem`, `escaped_pem()` (nginx's `$ssl_client_escaped_cert`) and `xfcc()`
    (Envoy's `x-forwarded-client-cert`) are the forms a server or a proxy passes it on in;
    `write(directory)` saves the certificate and key files a TLS client (httpx's `cert=`) uses.
    """

    pem: str
    key_pem: str = field(repr=False)
    der: bytes = field(repr=False)

    @classmethod
    def generate(cls, common_name: str = "test-client") -> ClientCertificate:
        """A new P-256 key and a certificate for it, valid from a day ago for a day ahead."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return cls(pem, key_pem, certificate.public_bytes(serialization.Encoding.DER))

    @property
    def x5t_s256(self) -> str:
        """The X.509 Certificate SHA-256 Thumbprint (base64url of the DER's SHA-256)."""
        digest = hashlib.sha256(self.der).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def escaped_pem(self) -> str:
        """The PEM, URL-escaped as nginx's `$ssl_client_escaped_cert` gives it."""
        return quote(self.pem, safe="-")

    def xfcc(self, *, cert: bool = True, hash: bool = True) -> str:
        """An Envoy `x-forwarded-client-cert` element for this certificate (`Hash=`, the hex
        SHA-256 of the DER, and `Cert=`, the URL-encoded PEM, as Envoy's `SANITIZE_SET` with
        `set_current_client_cert_details` gives them)."""
        parts = ["By=spiffe://example.test/api"]
        if hash:
            parts.append("Hash=" + hashlib.sha256(self.der).hexdigest())
        if cert:
            parts.append(f'Cert="{quote(self.pem, safe="")}"')
        return ";".join(parts)

    def write(self, directory: str | Path) -> tuple[str, str]:
        """Save the certificate and key as PEM files in `directory`: their paths."""
        directory = Path(directory)
        cert_path, key_path = directory / "client.crt", directory / "client.key"
        cert_path.write_text(self.pem)
        key_path.write_text(self.key_pem)
        return str(cert_path), str(key_path)


def client_certificate(common_name: str = "test-client") -> ClientCertificate:
    """A new self-signed client certificate (see `ClientCertificate`)."""
    return ClientCertificate.generate(common_name)
