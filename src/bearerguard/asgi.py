"""Pure ASGI middleware: authenticate `http` and `websocket` requests with bearer tokens.

Refusals are rendered by the one RFC 6750 renderer; websocket refusals close with 1008 before
accept, or send a real 401/403 through the `websocket.http.response` extension when offered.
No framework is imported: `scope["auth"]`/`scope["user"]` are duck-typed like Starlette's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack
from urllib.parse import quote

from ._challenge import Challenge
from ._credentials import Adapter, RequestContext, proof_values
from ._errors import BearerError, UpstreamUnavailableError
from ._forwarded import View
from ._guard import SCOPE_KEY, Guard, GuardOptions
from ._proxy import ProxyReader
from ._token import AccessToken
from ._types import ASGIApp, Receive, Scope, Send
from ._urls import route_path

if TYPE_CHECKING:  # adapters take a server; they need not load it
    from ._server import ResourceServer

__all__ = ["SCOPE_KEY", "BearerAuthMiddleware", "TokenUser"]

_METADATA_HEADERS = (("content-type", "application/json"),)
_AUTHENTICATED = frozenset({"http", "websocket"})  # scope types; lifespan passes through


class TokenUser:
    """`scope["user"]` and `scope["auth"]` (one object): the calling client and its scopes.

    Duck-typed like Starlette's `BaseUser` (`is_authenticated`, `display_name`, `identity`) and
    `AuthCredentials` (`scopes`, a sorted list built when first read), so `request.user`,
    `request.auth.scopes` and Starlette's own `requires()` work. `token` is the `AccessToken`,
    or None for a request let through without one (`optional=True`). It also carries the
    middleware's `Guard`, for route helpers to render refusals the same way (`guard_of`): one
    object in the scope, not one more key (each key added to a scope can make it grow).
    """

    __slots__ = ("_scopes", "guard", "token")

    def __init__(self, token: AccessToken | None, guard: Guard) -> None:
        self.token = token
        self.guard = guard
        self._scopes: list[str] | None = None

    @property
    def scopes(self) -> list[str]:
        if self._scopes is None:
            self._scopes = sorted(self.token.scopes) if self.token else []
        return self._scopes

    @property
    def is_authenticated(self) -> bool:
        return self.token is not None

    @property
    def display_name(self) -> str:
        return (self.token and (self.token.client_id or self.token.subject)) or ""

    @property
    def identity(self) -> str:
        return (self.token and self.token.subject) or ""

    def __repr__(self) -> str:
        return f"TokenUser(token={self.token!r})"


class BearerAuthMiddleware:
    """Authenticate every `http` and `websocket` request; `lifespan` passes through.

    The token is stored under `scope[SCOPE_KEY]` (None for a tokenless request when
    `optional=True`), and `scope["auth"]`/`scope["user"]` hold a `TokenUser` so that
    `request.auth.scopes`, `request.user.is_authenticated` and Starlette's `requires()` work.
    With `resource=` the RFC 9728 document is served at
    `/.well-known/oauth-protected-resource{path}`. The keyword
    arguments: `realm`, `resource`, `public_paths`, `optional`, `scopes_supported`, `policy` (see
    the README).

    Example::

        app = Starlette(routes=..., middleware=[
            Middleware(BearerAuthMiddleware, server=server, public_paths=["/health"]),
        ])
    """

    def __init__(
        self, app: ASGIApp, server: ResourceServer, **options: Unpack[GuardOptions]
    ) -> None:
        self.app = app
        self.guard = Guard(server, **options)

    @classmethod
    def _sharing(cls, app: ASGIApp, guard: Guard) -> BearerAuthMiddleware:
        """A middleware for `app` that shares `guard` (one per route, one Guard: Litestar)."""
        middleware = cls.__new__(cls)
        middleware.app, middleware.guard = app, guard
        return middleware

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in _AUTHENTICATED:
            await self.app(scope, receive, send)  # lifespan, and anything newer
            return
        guard = self.guard  # every request reads it: one attribute lookup
        path = scope["path"]
        policy = guard.policy
        if policy is not None:
            try:
                guard.check_path(path, scope.get("raw_path"))
            except BearerError as exc:
                await refuse(scope, send, guard.render(exc))
                return
        if kind == "http" and guard.metadata_paths and path in guard.metadata_paths:
            document = guard.metadata_document(scope.get("app", self.app))
            await _respond(send, Challenge(200, _METADATA_HEADERS, document))
            return
        public = guard.public_paths
        if policy is not None or public:
            # Below the mount point, as the router routes it (a suffix of a path in normal form).
            path = route_path(path, scope.get("root_path"))
            if public and guard.is_public(path):
                await self.app(scope, receive, send)
                return
        try:
            values, query = credentials(scope)
            token = guard.cached(values, query)  # a hit: nothing to await
            if token is None:
                token = await guard.aauthenticate(
                    values, query, context=context(scope, guard.proxies)
                )
            if policy is not None:  # websocket handshakes are GETs
                guard.enforce(scope.get("method", "GET"), path, token)
        except (BearerError, UpstreamUnavailableError) as exc:
            # The policy's route, if any: one only DPoP can meet challenges DPoP alone.
            route = policy.requirement_for(scope.get("method", "GET"), path) if policy else None
            await refuse(scope, send, guard.render(exc, route))
            return
        scope[SCOPE_KEY] = token
        scope["auth"] = scope["user"] = TokenUser(token, guard)  # one per request, never shared
        await self.app(scope, receive, send)


def guard_of(scope: Scope) -> Guard | None:
    """The `Guard` of the `BearerAuthMiddleware` that admitted this request, if one did."""
    user = scope.get("user")
    return user.guard if isinstance(user, TokenUser) else None


def credentials(scope: Scope) -> tuple[list[str], str]:
    """The `Authorization` field lines and the query string of an ASGI request."""
    values = []
    for name, value in scope["headers"]:  # a loop: a comprehension is one more call per request
        # Servers send names in lower case (uvicorn, hypercorn, daphne); others are compared
        # in lower case, after a length check that rules out most names without a copy.
        if name == b"authorization" or (len(name) == 13 and name.lower() == b"authorization"):
            values.append(value.decode("latin-1"))
    query = scope.get("query_string")
    return values, query.decode("latin-1") if query else ""


# A websocket handshake is an HTTP GET (RFC 6455 §4.1): a DPoP proof names its http(s) URL
# (RFC 9449 §4.2 `htu`, the request's target URI), not the ws(s) URL in the ASGI scope.
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def context(scope: Scope, proxies: ProxyReader | None) -> RequestContext:
    """The rest of an ASGI request's credentials (read on a cache miss only): the method, the
    URL as received (`raw_path` when the server gives it), the `DPoP` field lines and the client
    certificate of the `tls` extension, when the server offers it; with `proxies` (the guard's
    `TrustedProxies`), the URL and certificate a trusted proxy forwarded instead."""
    proofs, host, forwarded = [], None, dict[str, list[str]]()
    names = proxies.raw_names if proxies is not None else ()
    for raw_name, value in scope["headers"]:
        name = raw_name.lower()
        if name == b"dpop":
            proofs.append(value.decode("latin-1"))
        elif name == b"host":
            host = value.decode("latin-1")
        elif name in names:
            forwarded.setdefault(name.decode("ascii"), []).append(value.decode("latin-1"))
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    scheme = scope.get("scheme", "http")
    scheme = _HTTP_SCHEMES.get(scheme, scheme)
    view = View(scheme, _host(scope, host), "", chain[0] if chain else None)
    if proxies is not None:
        client = scope.get("client")
        view = proxies.view(
            client[0] if client else None,
            lambda name: ", ".join(forwarded[name]) if name in forwarded else None,
            view,
        )
    scheme, host, prefix, certificate = view
    url = None if scheme is None else f"{scheme}://{host}{prefix}{_target(scope)}"
    return RequestContext(scope.get("method", "GET"), url, proof_values(proofs), certificate)


def _host(scope: Scope, host: str | None) -> str:
    if host is None:  # HTTP/1.0 without Host: the address the server listened on
        server = scope.get("server")
        host = "localhost" if not server else (
            server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
        )  # fmt: skip
    return host


def _target(scope: Scope) -> str:
    """The request target's path and query, as received."""
    raw = scope.get("raw_path")
    path: str
    if raw:
        path = raw.decode("latin-1")
    else:  # servers differ on whether `path` includes `root_path` (see `route_path`)
        path, root = scope["path"], scope.get("root_path", "")
        path = quote(path if path.startswith(root) else root + path, safe="/;=,")
    query = scope.get("query_string")
    return path + (f"?{query.decode('latin-1')}" if query else "")


# How the framework integrations read an ASGI request's credentials (`Guard.admit`).
ADAPTER: Adapter[Scope] = Adapter(credentials, context)


async def refuse(scope: Scope, send: Send, refusal: Challenge) -> None:
    """Send a refusal on an `http` or a not yet accepted `websocket` connection."""
    if scope["type"] == "http":
        await _respond(send, refusal)
    elif "websocket.http.response" in scope.get("extensions", {}):
        await _respond(send, refusal, prefix="websocket.http.response")
    else:
        # RFC 6455 §7.4.1: 1008 is "policy violation"; before accept the server answers 403.
        await send({"type": "websocket.close", "code": 1008})


async def _respond(send: Send, response: Challenge, *, prefix: str = "http.response") -> None:
    headers = [(name.encode(), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": f"{prefix}.start", "status": response.status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": response.body})
