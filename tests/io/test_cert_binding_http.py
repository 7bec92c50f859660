"""Certificate-bound tokens (RFC 8705) and requests behind proxies over real HTTP on 127.0.0.1.

- WSGI under Werkzeug's server with TLS client authentication: the server passes the client
  certificate of the connection as `SSL_CLIENT_CERT`, and a bound token is accepted only from
  the client that holds its certificate.
- ASGI under uvicorn: uvicorn (0.55) and hypercorn do not fill the ASGI `tls` extension, so the
  certificate reaches the app the way it does behind a TLS-terminating proxy: in a header from
  a trusted peer (the test client, on 127.0.0.1, plays the proxy). The same header from a peer
  that is not trusted is ignored. (The `tls` extension itself is read in `tests/core`.)
- DPoP's `htu` behind a proxy, on both middlewares: the configured external origin, and trusted
  `X-Forwarded-*` headers; untrusted ones are not believed.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.serving import make_server

from bearerguard import ResourceServer, TrustedProxies
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import ClientCertificate, DPoPKey, LocalIssuer, client_certificate
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from ..integrations.mcp_support import free_port
from .test_dpop_http import asgi_app, wsgi_app

CERT, THIEF = client_certificate("owner"), client_certificate("thief")
KINDS = ["asgi", "wsgi"]
CERT_BINDING = (
    'Bearer realm="api", error="invalid_token", '
    'error_description="The access token is not bound to the client certificate."'
)


def server_certificate(directory: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (the TLS server's), as files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
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
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@contextmanager
def werkzeug_tls(app: Any, directory: Path) -> Iterator[tuple[str, str]]:
    """`app` under Werkzeug's threaded server with TLS, asking for a client certificate
    (optional: a client without one gets through TLS, and the app refuses its bound token)."""
    cert_path, key_path = server_certificate(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=CERT.pem + THIEF.pem)  # self-signed: their own CAs
    httpd = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_port}", cert_path
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def tls_client(base: str, ca: str, certificate: ClientCertificate | None, directory: Path) -> Any:
    context = ssl.create_default_context(cafile=ca)
    if certificate is not None:
        sub = directory / certificate.x5t_s256[:8]
        sub.mkdir(exist_ok=True)
        context.load_cert_chain(*certificate.write(sub))
    return httpx.Client(base_url=base, verify=context, timeout=10)


@contextmanager
def uvicorn_served(app: Any) -> Iterator[httpx.Client]:
    """`app` under uvicorn on 127.0.0.1 without uvicorn's own proxy-header handling (which
    would rewrite the peer address and scheme before the middleware sees them)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def wsgi_served(app: Any) -> Iterator[httpx.Client]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{httpd.server_port}", timeout=10) as client:
            yield client
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@contextmanager
def served(kind: str, server: ResourceServer, proxies: TrustedProxies) -> Iterator[httpx.Client]:
    if kind == "asgi":
        with uvicorn_served(
            BearerAuthMiddleware(asgi_app, server, realm="api", proxies=proxies)
        ) as c:
            yield c
    else:
        app = BearerAuthWSGIMiddleware(wsgi_app, server, realm="api", proxies=proxies)
        with wsgi_served(app) as c:
            yield c


def dashed(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


def call(client: httpx.Client, token: str, **headers: str) -> tuple[int, str | None]:
    headers = {"authorization": f"Bearer {token}", **dashed(headers)}
    response = client.get("/orders", headers=headers)
    assert response.status_code != 500
    assert token[-20:] not in response.text + str(response.headers)
    return response.status_code, response.headers.get("www-authenticate")


@pytest.mark.parametrize("dpop", ["off", "allowed"])
def test_wsgi_over_tls_with_client_certificates(
    local_issuer: LocalIssuer, tmp_path: Path, dpop: str
) -> None:
    token = local_issuer.mint(x5t_s256=CERT.x5t_s256)
    unbound = local_issuer.mint()
    server = ResourceServer(local_issuer.issuer_config(), dpop=dpop)  # type: ignore[arg-type]
    app = BearerAuthWSGIMiddleware(wsgi_app, server, realm="api")
    with werkzeug_tls(app, tmp_path) as (base, ca):
        with tls_client(base, ca, CERT, tmp_path) as owner:
            for _ in range(2):  # a miss, then a verified-token cache hit
                assert call(owner, token) == (200, None)
        with tls_client(base, ca, THIEF, tmp_path) as thief:  # the stolen token
            assert call(thief, token) == (401, CERT_BINDING)
            assert call(thief, unbound) == (200, None)
        with tls_client(base, ca, None, tmp_path) as anonymous:
            assert call(anonymous, token) == (401, CERT_BINDING)
            assert call(anonymous, unbound) == (200, None)


@pytest.mark.parametrize("kind", KINDS)
def test_the_certificate_header_of_a_trusted_proxy(local_issuer: LocalIssuer, kind: str) -> None:
    token = local_issuer.mint(x5t_s256=CERT.x5t_s256)
    server = ResourceServer(local_issuer.issuer_config())
    nginx = TrustedProxies(["127.0.0.1"], certificate_header="X-Client-Cert")
    with served(kind, server, nginx) as client:
        assert call(client, token, x_client_cert=CERT.escaped_pem()) == (200, None)
        assert call(client, token, x_client_cert=CERT.escaped_pem()) == (200, None)  # a hit
        assert call(client, token, x_client_cert=THIEF.escaped_pem()) == (401, CERT_BINDING)
        assert call(client, token) == (401, CERT_BINDING)
        assert call(client, token, x_client_cert="")[0] == 401  # nginx: no certificate
        status, challenge = call(client, token, x_client_cert="junk")
        assert status == 401 and "could not be read" in (challenge or "")
    envoy = TrustedProxies(["127.0.0.0/8"], certificate_header="x-forwarded-client-cert")
    with served(kind, ResourceServer(local_issuer.issuer_config()), envoy) as client:
        assert call(client, token, x_forwarded_client_cert=CERT.xfcc()) == (200, None)
        two = f"{THIEF.xfcc()},{CERT.xfcc()}"  # a client's element kept by a proxy: refused
        assert call(client, token, x_forwarded_client_cert=two)[0] == 401


@pytest.mark.parametrize("kind", KINDS)
def test_an_untrusted_peers_certificate_header_is_not_believed(
    local_issuer: LocalIssuer, kind: str
) -> None:
    """The client reaches the app directly (its address is not a proxy's): the header it sets
    is its own claim, and ignored. Fails if the header were believed."""
    token = local_issuer.mint(x5t_s256=CERT.x5t_s256)
    server = ResourceServer(local_issuer.issuer_config())
    elsewhere = TrustedProxies(["10.0.0.0/8"], certificate_header="x-client-cert")
    with served(kind, server, elsewhere) as client:
        assert call(client, token, x_client_cert=CERT.escaped_pem()) == (401, CERT_BINDING)


@pytest.mark.parametrize("kind", KINDS)
def test_dpop_htu_behind_a_proxy(local_issuer: LocalIssuer, kind: str) -> None:
    key = DPoPKey("ES256")
    token = local_issuer.mint(dpop_jkt=key.jkt)
    external = "https://api.example.com/orders"

    def dpop(client: httpx.Client, url: str, **headers: str) -> int:
        proof = key.proof("GET", url, token)
        response = client.get(
            "/orders",
            headers={"authorization": f"DPoP {token}", "dpop": proof, **dashed(headers)},
        )
        assert response.status_code != 500
        return response.status_code

    forwarded = {"x_forwarded_proto": "https", "x_forwarded_host": "api.example.com"}
    configurations = {
        "origin": TrustedProxies(origin="https://api.example.com"),
        "trusted": TrustedProxies(["127.0.0.1"], forwarded="x-forwarded"),
        "untrusted": TrustedProxies(["10.0.0.0/8"], forwarded="x-forwarded"),
    }
    for name, proxies in configurations.items():
        server = ResourceServer(local_issuer.issuer_config(), dpop="allowed")
        with served(kind, server, proxies) as client:
            own = str(client.base_url.join("/orders"))
            if name == "untrusted":  # the headers are ignored: the URL is the connection's
                assert dpop(client, external, **forwarded) == 401
                assert dpop(client, own, **forwarded) == 200
            else:
                assert dpop(client, external, **forwarded) == 200
                assert dpop(client, own, **forwarded) == 401
            if name == "trusted":  # a proof for what the headers say, and only that
                spoof = {"x_forwarded_proto": "https", "x_forwarded_host": "other.example"}
                assert dpop(client, external, **spoof) == 401
