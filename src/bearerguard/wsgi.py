"""WSGI middleware (PEP 3333): authenticate requests with bearer tokens on the sync path.

The same request policy and renderer as the ASGI middleware, so a request is answered the same
way by both. WSGI servers join repeated `Authorization` lines with commas; the header parser
refuses such a value as `invalid_request`, as the ASGI middleware does with two lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Unpack
from urllib.parse import quote

from ._challenge import Challenge
from ._credentials import Adapter, RequestContext, proof_values
from ._errors import BearerError, UpstreamUnavailableError
from ._forwarded import View
from ._guard import GUARD_KEY, SCOPE_KEY, Guard, GuardOptions
from ._proxy import ProxyReader
from ._types import Environ, StartResponse, WSGIApp

if TYPE_CHECKING:  # adapters take a server; they need not load it
    from ._server import ResourceServer

__all__ = ["SCOPE_KEY", "BearerAuthWSGIMiddleware"]

_METADATA_HEADERS = (("content-type", "application/json"),)


class BearerAuthWSGIMiddleware:
    """Authenticate every request before the wrapped WSGI app sees it.

    The token is stored under `environ[SCOPE_KEY]` (None for a tokenless request when
    `optional=True`). With `resource=` the RFC 9728 document is served. Keyword arguments are
    those of `BearerAuthMiddleware`.

    Example::

        app.wsgi_app = BearerAuthWSGIMiddleware(app.wsgi_app, server, public_paths=["/health"])
    """

    def __init__(
        self, app: WSGIApp, server: ResourceServer, **options: Unpack[GuardOptions]
    ) -> None:
        self.app = app
        self.guard = Guard(server, **options)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        guard = self.guard  # every request reads it: one attribute lookup
        path = environ.get("PATH_INFO") or "/"
        policy = guard.policy
        if policy is not None:
            try:
                raw = environ.get("RAW_URI", environ.get("REQUEST_URI"))
                path = guard.check_path(path, raw, wsgi=True)
            except BearerError as exc:
                return respond(start_response, guard.render(exc))
        if guard.metadata_paths and path in guard.metadata_paths:
            document = guard.metadata_document(self.app)
            return respond(start_response, Challenge(200, _METADATA_HEADERS, document))
        if guard.public_paths and guard.is_public(path):
            return self.app(environ, start_response)
        try:
            values, query = credentials(environ)
            token = guard.cached(values, query) or guard.authenticate(
                values, query, context=context(environ, guard.proxies)
            )
            if policy is not None:
                guard.enforce(environ.get("REQUEST_METHOD", "GET"), path, token)
        except (BearerError, UpstreamUnavailableError) as exc:
            # The policy's route, if any: one only DPoP can meet challenges DPoP alone.
            method = environ.get("REQUEST_METHOD", "GET")
            route = policy.requirement_for(method, path) if policy else None
            return respond(start_response, guard.render(exc, route))
        environ[SCOPE_KEY] = token
        environ[GUARD_KEY] = guard
        return self.app(environ, start_response)


def guard_of(environ: Environ) -> Guard | None:
    """The `Guard` of the `BearerAuthWSGIMiddleware` that admitted this request, if one did."""
    guard = environ.get(GUARD_KEY)
    return guard if isinstance(guard, Guard) else None


def credentials(environ: Environ) -> tuple[list[str], str]:
    """The `Authorization` value (already joined by the server) and the query string."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    return [] if authorization is None else [authorization], environ.get("QUERY_STRING", "")


def context(environ: Environ, proxies: ProxyReader | None) -> RequestContext:
    """The rest of a WSGI request's credentials (read on a cache miss only): the method, the URL
    (PEP 3333's reconstruction), the `DPoP` value (joined by the server if repeated) and the
    client certificate a server such as mod_wsgi passes as `SSL_CLIENT_CERT`; with `proxies`
    (the guard's `TrustedProxies`), the URL and certificate a trusted proxy forwarded instead."""
    proof = environ.get("HTTP_DPOP")
    scheme = environ.get("wsgi.url_scheme", "http")
    view = View(scheme, _host(environ, scheme), "", environ.get("SSL_CLIENT_CERT") or None)
    if proxies is not None:
        view = proxies.view(
            environ.get("REMOTE_ADDR"),
            lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")),
            view,
        )
    scheme, host, prefix, certificate = view
    return RequestContext(
        environ.get("REQUEST_METHOD", "GET"),
        None if scheme is None else f"{scheme}://{host}{prefix}{_target(environ)}",
        proof_values([proof]) if proof is not None else (),
        certificate,
    )


def _host(environ: Environ, scheme: str) -> str:
    """PEP 3333's host of the URL reconstruction, tolerating an environ that lacks it."""
    host: str | None = environ.get("HTTP_HOST")
    if not host:
        host, port = environ.get("SERVER_NAME", "localhost"), environ.get("SERVER_PORT", "")
        if port and port != ("443" if scheme == "https" else "80"):
            host += f":{port}"
    return host


def _target(environ: Environ) -> str:
    """PEP 3333's path and query of the URL reconstruction."""
    path = quote(
        environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
        safe="/;=,",
        encoding="latin1",
    )
    query = environ.get("QUERY_STRING")
    return (path or "/") + (f"?{query}" if query else "")


# How the framework integrations read a WSGI request's credentials (`Guard.admit`).
ADAPTER: Adapter[Environ] = Adapter(credentials, context)


def respond(start_response: StartResponse, response: Challenge) -> list[bytes]:
    """Send a rendered response through `start_response`; the body to return."""
    status = f"{response.status} {HTTPStatus(response.status).phrase}"
    headers = [*response.headers, ("content-length", str(len(response.body)))]
    start_response(status, headers)
    return [response.body]
