"""`TrustedProxies`: the URL and client certificate behind proxies, read by both adapters'
`context` on cache misses, believed only from the peers configured (an untrusted peer's headers
are ignored, and logged once)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bearerguard import ConfigurationError, TrustedProxies
from bearerguard._proxy import ProxyReader
from bearerguard.asgi import context as asgi_context
from bearerguard.testing import client_certificate
from bearerguard.wsgi import context as wsgi_context

CERT, OWN = client_certificate(), client_certificate("the-proxy")
PROXY, CLIENT = "10.0.0.7", "203.0.113.9"
X_FORWARDED = TrustedProxies(["10.0.0.0/8"], forwarded="x-forwarded", certificate_header="x-cert")


def asgi(headers: dict[str, str], peer: str | None, proxies: TrustedProxies | None) -> Any:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/orders",
        "raw_path": b"/orders",
        "query_string": b"page=2",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()],
        "server": ("10.0.0.1", 8000),
        "client": None if peer is None else (peer, 51000),
        "extensions": {"tls": {"client_cert_chain": [OWN.pem]}},
    }
    return asgi_context(scope, None if proxies is None else ProxyReader(proxies))


def wsgi(headers: dict[str, str], peer: str | None, proxies: TrustedProxies | None) -> Any:
    environ = {
        "REQUEST_METHOD": "GET",
        "wsgi.url_scheme": "http",
        "PATH_INFO": "/orders",
        "QUERY_STRING": "page=2",
        "SERVER_NAME": "10.0.0.1",
        "SERVER_PORT": "8000",
        "SSL_CLIENT_CERT": OWN.pem,
        **({} if peer is None else {"REMOTE_ADDR": peer}),
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return wsgi_context(environ, None if proxies is None else ProxyReader(proxies))


ADAPTERS = pytest.mark.parametrize("read", [asgi, wsgi], ids=["asgi", "wsgi"])
FORWARDED = {
    "host": "10.0.0.1:8000",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "api.example.com",
    "x-cert": CERT.escaped_pem(),
}


@ADAPTERS
def test_without_proxies_the_connection_is_what_counts(read: Any) -> None:
    context = read(FORWARDED, PROXY, None)
    assert context.url == "http://10.0.0.1:8000/orders?page=2"
    assert context.certificate == OWN.pem


@ADAPTERS
def test_a_trusted_proxy_gives_the_url_and_the_only_certificate(read: Any) -> None:
    context = read(FORWARDED, PROXY, X_FORWARDED)
    assert context.url == "https://api.example.com/orders?page=2"
    assert context.certificate == CERT.escaped_pem()
    # No certificate header: none, never the connection's own (the proxy's) certificate.
    without = {k: v for k, v in FORWARDED.items() if k != "x-cert"}
    assert read(without, PROXY, X_FORWARDED).certificate is None
    assert read({**FORWARDED, "x-cert": ""}, PROXY, X_FORWARDED).certificate is None  # nginx


@ADAPTERS
@pytest.mark.parametrize("peer", [CLIENT, None, "not-an-address", "10.0.0.7.1"])
def test_an_untrusted_peers_headers_are_ignored_and_logged_once(
    read: Any, peer: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    proxies = ProxyReader(X_FORWARDED)
    with caplog.at_level(logging.WARNING, "bearerguard"):
        for _ in range(3):
            if read is asgi:
                scope_headers = [(k.encode(), v.encode()) for k, v in FORWARDED.items()]
                context = asgi_context(_scope(scope_headers, peer), proxies)
            else:
                context = read(FORWARDED, peer, X_FORWARDED)
            assert context.url == "http://10.0.0.1:8000/orders?page=2"
            assert context.certificate == OWN.pem  # the connection's own client certificate
    if read is asgi:  # one reader: one line, naming the headers, never their values
        (line,) = [r.getMessage() for r in caplog.records]
        assert "x-forwarded-host" in line and "x-cert" in line
        assert "api.example.com" not in line and "CERTIFICATE" not in line


def _scope(headers: list[tuple[bytes, bytes]], peer: str | None) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/orders",
        "query_string": b"page=2",
        "headers": [(b"host", b"10.0.0.1:8000"), *headers],
        "client": None if peer is None else (peer, 1),
        "extensions": {"tls": {"client_cert_chain": [OWN.pem]}},
    }


@ADAPTERS
@pytest.mark.parametrize(
    ("headers", "url"),
    [
        ({"x-forwarded-port": "8443"}, "https://api.example.com:8443/orders?page=2"),
        ({"x-forwarded-host": "api.example.com:444"}, "https://api.example.com:444/orders?page=2"),
        ({"x-forwarded-prefix": "/v1/"}, "https://api.example.com/v1/orders?page=2"),
        # Each proxy appends: the nearest one's value (hops=1) counts, a client's never.
        ({"x-forwarded-host": "evil.example, api.example.com"}, None),
        ({"x-forwarded-proto": "HTTPS"}, None),
        # What a trusted proxy says that cannot be a URL: no URL (a DPoP proof then fails).
        ({"x-forwarded-proto": "ftp"}, "!"),
        ({"x-forwarded-host": "api.example.com/x"}, "!"),
        ({"x-forwarded-host": "user@api.example.com"}, "!"),
        ({"x-forwarded-port": "443x"}, "!"),
        ({"x-forwarded-prefix": "v1?x"}, "!"),
    ],
)
def test_x_forwarded_values(read: Any, headers: dict[str, str], url: str | None) -> None:
    context = read({**FORWARDED, **headers}, PROXY, X_FORWARDED)
    expected = {None: "https://api.example.com/orders?page=2", "!": None}.get(url, url)
    assert context.url == expected


@ADAPTERS
def test_hops_pick_the_value_of_the_outermost_trusted_proxy(read: Any) -> None:
    two = TrustedProxies(["10.0.0.0/8"], forwarded="x-forwarded", hops=2)
    headers = {
        "x-forwarded-host": "evil, api.example.com, inner.local",
        "x-forwarded-proto": "https",
    }
    # Proto has one value only: fewer than the hops, so it is not believed (the connection's).
    assert read(headers, PROXY, two).url == "http://api.example.com/orders?page=2"


@ADAPTERS
@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("proto=https;host=api.example.com", "https://api.example.com/orders?page=2"),
        (
            'for=1.2.3.4;host="api.example.com:8443";proto=https',
            "https://api.example.com:8443/orders?page=2",
        ),
        (
            "host=evil.example, Proto=HTTPS;Host=api.example.com",
            "https://api.example.com/orders?page=2",
        ),
        ('for="[2001:db8::1]";proto=http', "http://10.0.0.1:8000/orders?page=2"),
        ("for=1.2.3.4", "http://10.0.0.1:8000/orders?page=2"),
        ("proto=https;proto=http", None),  # a parameter twice
        ("proto=https,", None),
        ("proto=https;host=a/b", None),
        ('proto="https', None),
        ("", None),
    ],
)
def test_rfc_7239_forwarded(read: Any, value: str, url: str | None) -> None:
    proxies = TrustedProxies(["10.0.0.0/8"], forwarded="forwarded")
    headers = {"host": "10.0.0.1:8000", "forwarded": value}
    assert read(headers, PROXY, proxies).url == url


@ADAPTERS
@pytest.mark.parametrize("peer", [PROXY, CLIENT])
def test_a_configured_origin_needs_no_header_and_no_trust(read: Any, peer: str) -> None:
    proxies = TrustedProxies(origin="https://api.example.com/v1")
    context = read(FORWARDED, peer, proxies)
    assert context.url == "https://api.example.com/v1/orders?page=2"
    assert context.certificate == OWN.pem  # no certificate header configured


def test_any_peer_and_ipv6_and_mapped_addresses() -> None:
    anyone = TrustedProxies(["*"], certificate_header="x-cert")
    assert anyone.trusts(None) and anyone.trusts("198.51.100.1")
    v6 = TrustedProxies(["::1", "10.0.0.0/8"], certificate_header="x-cert")
    assert v6.trusts("::1") and v6.trusts("::ffff:10.1.2.3") and v6.trusts("fe80::1%eth0") is False
    assert not v6.trusts("") and not v6.trusts("::2")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"addresses": "10.0.0.1", "certificate_header": "x"},  # a bare string: its characters
        {"addresses": ["10.0.0.300"], "certificate_header": "x"},
        {"addresses": ["10.0.0.1"]},  # nothing to believe them about
        {"forwarded": "x-forwarded"},  # headers believed from nobody
        {"certificate_header": "x-cert"},
        {"addresses": ["10.0.0.1"], "certificate_header": "bad header"},
        {"addresses": ["10.0.0.1"], "forwarded": "x-forwarded-for"},
        {"addresses": ["10.0.0.1"], "forwarded": "forwarded", "hops": 0},
        {"addresses": ["10.0.0.1"], "forwarded": "forwarded", "origin": "https://a"},
        {"origin": "api.example.com"},
        {"origin": "https://u@api.example.com"},
        {"origin": "https://api.example.com/?q"},
        {"origin": "ftp://api.example.com"},
    ],
)
def test_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        TrustedProxies(**kwargs)
