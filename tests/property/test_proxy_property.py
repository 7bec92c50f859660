"""Property tests: whatever a certificate header or forwarding headers say, both middlewares
answer a documented 401 (never a 500), and accept only what the headers truly denote, and only
from a trusted peer.

Requests go through the ASGI and WSGI middlewares in-process, with a real LocalIssuer's keys.
The oracles do not use bearerguard's parsers: a certificate is recognised with the standard
library (`ssl.PEM_cert_to_DER_cert`) and a hex digest, both more lenient than the verifier, so
"accepted implies it names the owner's certificate" is a sound check.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from anyio.from_thread import BlockingPortal
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bearerguard import ResourceServer, TrustedProxies
from bearerguard._forwarded import AUTHORITY, View, forwarded, x_forwarded
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import DPoPKey, LocalIssuer, client_certificate
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from ..integrations.conftest import wsgi_environ
from .conftest import asgi, ok_asgi, ok_wsgi

CERT, THIEF = client_certificate("owner"), client_certificate("thief")
KEY = DPoPKey("ES256")
PROXY, CLIENT = "10.0.0.7", "203.0.113.9"
EXTERNAL = "https://api.example.com/orders"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
_B64 = re.compile(r"[^A-Za-z0-9+/=]")


class Apps:
    """Both middlewares over one server each, behind the same `TrustedProxies`."""

    def __init__(self, issuer: LocalIssuer, proxies: TrustedProxies, portal: BlockingPortal):
        self.servers = [ResourceServer(issuer.issuer_config(), dpop="allowed") for _ in "aw"]
        self.asgi = BearerAuthMiddleware(ok_asgi, self.servers[0], proxies=proxies)
        self.wsgi = BearerAuthWSGIMiddleware(ok_wsgi, self.servers[1], proxies=proxies)
        self.portal = portal

    def statuses(self, peer: str, headers: dict[str, str]) -> list[int]:
        """The status each middleware answers a GET /orders with `headers` from `peer`."""
        scope = {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": "/orders",
            "raw_path": b"/orders",
            "query_string": b"",
            "headers": [(b"host", b"testserver")]
            + [(k.encode(), v.encode("utf-8")) for k, v in headers.items()],
            "client": (peer, 40000),
        }
        sent = asgi(self.portal, self.asgi, scope)
        environ = wsgi_environ("GET", "/orders", "")
        environ["REMOTE_ADDR"] = peer
        environ["HTTP_HOST"] = "testserver"
        for name, value in headers.items():  # a WSGI environ holds latin-1 text (PEP 3333)
            environ["HTTP_" + name.upper().replace("-", "_")] = value.encode().decode("latin-1")
        started: list[Any] = []
        b"".join(self.wsgi(environ, lambda status, headers, *_: started.append(status)))
        return [sent[0]["status"], int(started[0].split()[0])]

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest.fixture(scope="module")
def cert_apps(local_issuer_session: LocalIssuer, portal: BlockingPortal) -> Iterator[Apps]:
    proxies = TrustedProxies(["10.0.0.0/8"], certificate_header="x-client-cert")
    apps = Apps(local_issuer_session, proxies, portal)
    yield apps
    apps.close()


@pytest.fixture(scope="module")
def url_apps(local_issuer_session: LocalIssuer, portal: BlockingPortal) -> Iterator[Apps]:
    proxies = TrustedProxies(["10.0.0.0/8"], forwarded="x-forwarded")
    apps = Apps(local_issuer_session, proxies, portal)
    yield apps
    apps.close()


@pytest.fixture(scope="module")
def tokens(local_issuer_session: LocalIssuer) -> dict[str, str]:
    return {
        "bound": local_issuer_session.mint(x5t_s256=CERT.x5t_s256),
        "unbound": local_issuer_session.mint(),
        "dpop": local_issuer_session.mint(dpop_jkt=KEY.jkt),
    }


def names_owner(value: str) -> bool:
    """Does `value` (leniently read) name the owner's certificate? A superset of what the
    verifier accepts: the owner's SHA-256 in hex anywhere, or a PEM whose body is the owner's."""
    if hashlib.sha256(CERT.der).hexdigest() in value.lower():
        return True
    for text in (value, unquote(value)):
        for chunk in text.split("-----BEGIN CERTIFICATE-----")[1:]:
            body = _B64.sub("", unquote(chunk).split("-----END")[0])
            try:
                pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
                if ssl.PEM_cert_to_DER_cert(pem) == CERT.der:
                    return True
            except ValueError:
                continue
    return False


def one_change(data: st.DataObject, text: str) -> str:
    at = data.draw(st.integers(0, len(text) - 1))
    char = data.draw(st.characters(codec="ascii", exclude_characters="\r\n\0"))
    change = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    if change == "replace":
        return text[:at] + char + text[at + 1 :]
    return text[:at] + char + text[at:] if change == "insert" else text[:at] + text[at + 1 :]


GOOD = [CERT.pem.replace("\n", " "), CERT.escaped_pem(), CERT.xfcc(), CERT.xfcc(cert=False)]
OTHERS = [THIEF.escaped_pem(), THIEF.xfcc(), f"{THIEF.xfcc()},{CERT.xfcc()}"]
header_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n\0", exclude_categories=["Cs"]),
    max_size=300,
).map(str.strip)


@SETTINGS
@given(data=st.data())
@example(data=None)
def test_certificate_headers_only_accept_the_owners_certificate_from_a_trusted_peer(
    cert_apps: Apps, tokens: dict[str, str], data: Any
) -> None:
    if data is None:  # the control: the owner's own forms are accepted
        for value in GOOD:
            headers = {"authorization": f"Bearer {tokens['bound']}", "x-client-cert": value}
            assert cert_apps.statuses(PROXY, headers) == [200, 200], value
        return
    value = data.draw(
        st.sampled_from(GOOD + OTHERS)
        | st.builds(one_change, st.just(data), st.sampled_from(GOOD))
        | header_text
    )
    bound = {"authorization": f"Bearer {tokens['bound']}", "x-client-cert": value}
    statuses = cert_apps.statuses(PROXY, bound)
    assert set(statuses) <= {200, 401}, statuses
    assert len(set(statuses)) == 1, statuses  # both middlewares judge alike
    if statuses[0] == 200:
        assert names_owner(value), value
    # From a peer that is not a trusted proxy, the header is not believed: never accepted.
    assert cert_apps.statuses(CLIENT, bound) == [401, 401]
    # An unbound token ignores the header, whatever it holds.
    unbound = {"authorization": f"Bearer {tokens['unbound']}", "x-client-cert": value}
    assert cert_apps.statuses(PROXY, unbound) == [200, 200]


forwarded_value = (
    st.sampled_from(["https", "HTTPS", "http", "api.example.com", "api.example.com:443", "443"])
    | st.sampled_from(["/", "", " ", ",", "evil.example", "ftp", "api.example.com/x", "80"])
    | header_text
)


def allows_external(headers: dict[str, str]) -> bool:
    """Could the proxy's values (the last of each) name `EXTERNAL`? Leniently: case,
    percent-encoding and a default port aside."""

    def last(name: str) -> str | None:
        value = headers.get(name)
        return None if value is None else unquote(value.split(",")[-1].strip()).lower()

    proto, host = last("x-forwarded-proto"), last("x-forwarded-host")
    port, prefix = last("x-forwarded-port"), last("x-forwarded-prefix")
    return (
        proto == "https"
        and host in ("api.example.com", "api.example.com:443", "api.example.com:")
        and port in (None, "443", "0443", "00443")
        and prefix in (None, "", "/", "//")
    )


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(
            ["x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix"]
        ),
        forwarded_value | st.lists(forwarded_value, min_size=2, max_size=3).map(", ".join),
    )
)
@example({"x-forwarded-proto": "https", "x-forwarded-host": "api.example.com"})
@example({"x-forwarded-proto": "https", "x-forwarded-host": "evil.example, api.example.com"})
@example({"x-forwarded-proto": "https", "x-forwarded-host": "api.example.com, evil.example"})
@example({"x-forwarded-proto": "http, https", "x-forwarded-host": "api.example.com"})
def test_forwarded_headers_only_name_the_url_a_trusted_proxy_says(
    url_apps: Apps, tokens: dict[str, str], headers: dict[str, str]
) -> None:
    token = tokens["dpop"]

    def request(peer: str) -> list[int]:
        proof = KEY.proof("GET", EXTERNAL, token)  # a fresh one each time (no replay)
        return url_apps.statuses(peer, {"authorization": f"DPoP {token}", "dpop": proof, **headers})

    statuses = request(PROXY)
    assert set(statuses) <= {200, 401} and len(set(statuses)) == 1, statuses
    assert (statuses[0] == 200) == allows_external(headers) or (
        statuses[0] == 401 and allows_external(headers) and "%" in str(headers)
    ), (statuses, headers)
    assert request(CLIENT) == [401, 401]  # never believed from a client: the URL is http://…


forwarded_text = (
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["proto", "Proto", "host", "for", "by", "x", ""]),
                st.sampled_from(["https", "http", "ftp", '"api.example.com:8443"', '"a\\"b"'])
                | header_text,
            ).map("=".join),
            max_size=3,
        ).map(";".join),
        max_size=3,
    ).map(", ".join)
    | header_text
)


@SETTINGS
@given(forwarded_text, st.integers(1, 3), st.sampled_from(["x-forwarded", "forwarded"]))
def test_forwarding_headers_never_raise_and_give_a_url_or_none(
    text: str, hops: int, kind: str
) -> None:
    """Whatever a trusted proxy's header holds, the reader gives the connection's view, the
    proxy's (an http(s) scheme and an authority without path, userinfo or space), or no URL."""

    def header(name: str) -> str | None:
        return text if name in ("forwarded", "x-forwarded-host", "x-forwarded-proto") else None

    if kind == "forwarded":
        view = forwarded(text, hops, "http", "testserver", None)
    else:
        view = x_forwarded(header, hops, "http", "testserver", None)
    assert isinstance(view, View)
    if view.scheme is not None:
        assert view.scheme in ("http", "https")
        assert AUTHORITY.fullmatch(view.host), view
        assert not any(c in view.host for c in "/?#@ \t")
