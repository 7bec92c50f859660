"""The credentials seam: what adapters read of a request, and what the server verifies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearerguard import (
    Credentials,
    InvalidRequestError,
    MissingTokenError,
    RequestContext,
    ResourceServer,
)
from bearerguard._credentials import Read, read_credentials
from bearerguard.asgi import context as asgi_context
from bearerguard.testing import LocalIssuer
from bearerguard.testing._testkit import issuer_config
from bearerguard.wsgi import context as wsgi_context

from ..conftest import Twin

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def asgi_scope(headers: list[tuple[bytes, bytes]], **more: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "path": "/orders/7",
        "raw_path": b"/orders/7",
        "query_string": b"page=2",
        "headers": headers,
        "server": ("10.0.0.1", 8443),
    }
    scope.update(more)
    return scope


def test_read_credentials_takes_the_context_along() -> None:
    context = RequestContext("GET", "https://api.test/x", ("proof",), PEM)
    credentials = read_credentials("bearer abc.def", context)
    assert type(credentials) is Read  # its grammar checked: the server does not check it again
    assert credentials == Credentials(
        "Bearer", "abc.def", "GET", "https://api.test/x", ("proof",), PEM
    )
    with pytest.raises(MissingTokenError):
        read_credentials(None)
    with pytest.raises(MissingTokenError):
        read_credentials("Basic dXNlcjpwYXNz")
    with pytest.raises(InvalidRequestError):
        read_credentials("Bearer a b")


def test_the_repr_never_shows_the_token() -> None:
    credentials = Credentials("Bearer", "secret-token-value", proofs=("secret-proof",))
    assert "secret" not in repr(credentials)
    assert "18 chars" in repr(credentials)


def test_asgi_context_reads_method_url_proofs_and_certificate() -> None:
    headers = [(b"host", b"api.test"), (b"DPoP", b"p1"), (b"dpop", b"p2, p3")]
    scope = asgi_scope(headers, extensions={"tls": {"client_cert_chain": [PEM, "intermediate"]}})
    context = asgi_context(scope, None)
    assert context == RequestContext(
        "POST", "https://api.test/orders/7?page=2", ("p1", "p2", "p3"), PEM
    )


def test_asgi_context_without_host_or_raw_path() -> None:
    scope = asgi_scope([], query_string=b"", root_path="/v1", path="/v1/a")
    del scope["raw_path"]
    assert asgi_context(scope, None).url == "https://10.0.0.1:8443/v1/a"
    assert asgi_context(scope, None).proofs == () and asgi_context(scope, None).certificate is None
    # A server that says it has no extensions (None rather than a dict) is no certificate.
    assert asgi_context(asgi_scope([], extensions=None), None).certificate is None


def test_wsgi_context_reads_method_url_proofs_and_certificate() -> None:
    environ = {
        "REQUEST_METHOD": "DELETE",
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "api.test",
        "SCRIPT_NAME": "/v1",
        "PATH_INFO": "/orders/ä",
        "QUERY_STRING": "a=1",
        "HTTP_DPOP": "p1, p2",  # two lines, joined by the server
        "SSL_CLIENT_CERT": PEM,
    }
    context = wsgi_context(environ, None)
    assert context == RequestContext(
        "DELETE", "https://api.test/v1/orders/%E4?a=1", ("p1", "p2"), PEM
    )
    bare = wsgi_context({"PATH_INFO": "/x", "SERVER_NAME": "h", "SERVER_PORT": "8080"}, None)
    assert bare == RequestContext("GET", "http://h:8080/x", (), None)


@given(
    headers=st.lists(
        st.tuples(st.sampled_from([b"dpop", b"host", b"Host", b"x-other"]), st.binary(max_size=40)),
        max_size=6,
    ),
    path=st.text(max_size=30),
    query=st.binary(max_size=20),
)
def test_asgi_context_never_raises(
    headers: list[tuple[bytes, bytes]], path: str, query: bytes
) -> None:
    scope = asgi_scope(headers, path="/" + path, raw_path=None, query_string=query)
    context = asgi_context(scope, None)
    assert context.method == "POST" and isinstance(context.url, str)


@given(environ=st.dictionaries(
    st.sampled_from(["HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME", "PATH_INFO",
                     "QUERY_STRING", "HTTP_DPOP", "wsgi.url_scheme", "REQUEST_METHOD"]),
    st.text(alphabet=st.characters(max_codepoint=255), max_size=30),
))  # fmt: skip
def test_wsgi_context_never_raises(environ: dict[str, str]) -> None:
    assert isinstance(wsgi_context(environ, None).url, str)


def test_the_server_verifies_credentials_and_refuses_hand_made_ones(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    server = ResourceServer(issuer_config(local_issuer))
    twin.servers.append(server)
    token = local_issuer.mint()

    def verify(credentials: Credentials) -> object:
        if twin.portal is None:
            return server.verify_credentials(credentials)
        return twin.portal.call(server.averify_credentials, credentials)

    context = RequestContext("GET", "https://api.test/", (), None)
    assert verify(read_credentials("Bearer " + token, context)).issuer == local_issuer.issuer  # type: ignore[attr-defined]
    assert verify(Credentials("Bearer", token)).issuer == local_issuer.issuer  # type: ignore[attr-defined]
    with pytest.raises(MissingTokenError):
        verify(Credentials("Basic", "abc"))
    with pytest.raises(InvalidRequestError):
        verify(Credentials("Bearer", "not a b64token"))
    # A cached token is served only for the scheme it is verified with: the same token under
    # another scheme is what that header would be, no bearer credentials (DPoP is off here).
    for scheme in ("DPoP", "Basic"):
        with pytest.raises(MissingTokenError):
            verify(Credentials(scheme, token))


def test_the_middlewares_hand_the_context_to_the_server(local_issuer: LocalIssuer) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from bearerguard.asgi import BearerAuthMiddleware
    from bearerguard.wsgi import BearerAuthWSGIMiddleware

    seen: list[Credentials] = []

    class Recording(ResourceServer):
        def verify_credentials(self, credentials: Credentials) -> Any:
            seen.append(credentials)
            return super().verify_credentials(credentials)

        async def averify_credentials(self, credentials: Credentials) -> Any:
            seen.append(credentials)
            return await super().averify_credentials(credentials)

    server = Recording(issuer_config(local_issuer))
    token = local_issuer.mint()
    app = Starlette(routes=[Route("/r", lambda request: PlainTextResponse("ok"))])
    with TestClient(BearerAuthMiddleware(app, server)) as client:
        answer = client.get("/r?q=1", headers={"authorization": f"Bearer {token}", "dpop": "p"})
    assert answer.status_code == 200
    assert seen[-1] == Credentials("Bearer", token, "GET", "http://testserver/r?q=1", ("p",), None)

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    fresh = local_issuer.mint()  # a miss: the context is read only then
    middleware = BearerAuthWSGIMiddleware(wsgi_app, server)
    environ = {
        "REQUEST_METHOD": "PUT", "wsgi.url_scheme": "http", "HTTP_HOST": "h", "PATH_INFO": "/w",
        "QUERY_STRING": "", "HTTP_AUTHORIZATION": f"Bearer {fresh}",
    }  # fmt: skip
    assert middleware(environ, lambda status, headers: None) == [b"ok"]
    assert seen[-1] == Credentials("Bearer", fresh, "PUT", "http://h/w", (), None)
