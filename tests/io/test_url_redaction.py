"""Configured URLs never bring their userinfo, query or fragment into a log line or an error.

Each URL below carries credentials where operators put them (`https://user:pass@idp/`,
`?api_key=`) and points at a real LocalIssuer on 127.0.0.1, which then fails on purpose so that
the URL reaches the log lines and error messages written about it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from bearerguard import (
    ConfigurationError,
    Introspection,
    Issuer,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard._redact import safe_url
from bearerguard.testing import LocalIssuer

from ..conftest import Twin

SECRETS = ("s3cr3t-user", "s3cr3t-pass", "s3cr3t-key", "s3cr3t-frag")


def with_secrets(url: str) -> str:
    """`url` with userinfo, a query and a fragment, none of which may ever be shown."""
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(
            netloc=f"s3cr3t-user:s3cr3t-pass@{parts.netloc}",
            query="api_key=s3cr3t-key",
            fragment="s3cr3t-frag",
        )
    )


def shown(url: str) -> str:
    """What may be shown of `with_secrets(url)`, written out independently of `safe_url`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://…@{parts.netloc}{parts.path}?…"


def assert_hidden(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (with_secrets("https://idp.example:8443/t/keys"), "https://…@idp.example:8443/t/keys?…"),
        ("https://idp.example/keys", "https://idp.example/keys"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("https://idp.example/keys?api_key=k", "https://idp.example/keys?…"),
        ("https://idp.example/keys#k", "https://idp.example/keys?…"),
        ("https://s3cr3t-user@idp.example/keys", "https://…@idp.example/keys"),
        ("https://a:p@ss@idp.example/keys", "https://…@idp.example/keys"),  # the last @ ends it
        ("http://[::1/keys", "(a URL that cannot be parsed)"),
        ("https://s3cr3t-user:s3cr3t#pass@idp/", "(a URL that cannot be parsed)"),  # no port
    ],
)
def test_safe_url(url: str, expected: str) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize("where", ["jwks_uri", "discovery_url"])
def test_key_fetch_failures_show_no_url_credentials(
    twin: Twin, local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    url = local_issuer.jwks_uri if where == "jwks_uri" else local_issuer.openid_configuration_url
    server = ResourceServer(
        Issuer(
            issuer=local_issuer.issuer,
            audience=local_issuer.audience,
            jwks_uri=with_secrets(url) if where == "jwks_uri" else None,
            discovery_url=with_secrets(url) if where == "discovery_url" else None,
        )
    )
    token = local_issuer.mint()
    local_issuer.go_down("error", 503)

    with pytest.raises(UpstreamUnavailableError) as raised:
        twin.verify(server, token)

    (status,) = server.status()
    written = f"{caplog.text}\n{raised.value}\n{status.last_error}"
    assert_hidden(written)
    assert f"{shown(url)}: HTTP 503" in caplog.text  # the URL is still named, without them
    assert f"{shown(url)}: HTTP 503" in str(status.last_error)


def test_introspection_failures_show_no_url_credentials(
    twin: Twin, local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = with_secrets(local_issuer.introspection_endpoint)
    introspection = Introspection(
        endpoint=endpoint, client_id="test-client", client_secret="test-secret"
    )
    server = ResourceServer((), introspection=introspection)
    token = local_issuer.mint_opaque(scope="orders.read")
    local_issuer.go_down("error", 503)

    with pytest.raises(UpstreamUnavailableError) as raised:
        twin.verify(server, token)

    assert_hidden(f"{caplog.text}\n{raised.value}")
    where = f"introspection at {shown(local_issuer.introspection_endpoint)}"
    assert f"{where} failed: HTTP 503" in caplog.text
    assert str(raised.value) == f"{where} could not be fetched"


@pytest.mark.parametrize(
    "build",
    [
        lambda url: Issuer(issuer="https://idp.example", audience="api://a", jwks_uri=url),
        lambda url: Issuer(issuer="https://idp.example", audience="api://a", discovery_url=url),
        lambda url: Introspection(endpoint=url, client_id="c", client_secret="s"),
    ],
    ids=["jwks_uri", "discovery_url", "introspection"],
)
def test_configuration_errors_show_no_url_credentials(build: Any) -> None:
    url = "http://idp.example/keys"  # plain http to a host that is not loopback: refused
    with pytest.raises(ConfigurationError, match="must be an https URL") as raised:
        build(with_secrets(url))
    assert_hidden(str(raised.value))
    assert repr(shown(url)) in str(raised.value)
