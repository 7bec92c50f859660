"""Pure ASGI middleware: authenticate `http` and `websocket` requests with bearer tokens.

Refusals are rendered by the one RFC 6750 renderer; websocket refusals close with 1008 before
accept, or send a real 401/403 through the `websocket.http.response` extension when offered.
No framework is imported: `scope["auth"]`/`scope["user"]` are duck-typed like Starlette's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Unpack

from ._challenge import Challenge
from ._errors import BearerError, UpstreamUnavailableError
from ._guard import GUARD_KEY, SCOPE_KEY, Guard, GuardOptions
from ._server import ResourceServer
from ._token import AccessToken
from ._types import ASGIApp, Receive, Scope, Send

__all__ = ["SCOPE_KEY", "BearerAuthMiddleware", "TokenCredentials", "TokenUser"]

_METADATA_HEADERS = (("content-type", "application/json"),)


@dataclass(frozen=True, slots=True)
class TokenCredentials:
    """`scope["auth"]`: the token's scopes, like Starlette's `AuthCredentials`."""

    scopes: list[str]


@dataclass(frozen=True, slots=True)
class TokenUser:
    """`scope["user"]`: the calling client, like Starlette's `BaseUser`."""

    token: AccessToken | None

    @property
    def is_authenticated(self) -> bool:
        return self.token is not None

    @property
    def display_name(self) -> str:
        return (self.token and (self.token.client_id or self.token.subject)) or ""

    @property
    def identity(self) -> str:
        return (self.token and self.token.subject) or ""


class BearerAuthMiddleware:
    """Authenticate every `http` and `websocket` request; `lifespan` passes through.

    The token is stored under `scope[SCOPE_KEY]` (None for a tokenless request when
    `optional=True`), and `scope["auth"]`/`scope["user"]` are filled so that `request.auth.scopes`,
    `request.user.is_authenticated` and Starlette's `requires()` work. With `resource=` the
    RFC 9728 document is served at `/.well-known/oauth-protected-resource{path}`. The keyword
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan, and anything newer
            return
        path = scope["path"]
        policy = self.guard.policy
        if policy is not None:
            try:
                self.guard.check_path(path, scope.get("raw_path"))
            except BearerError as exc:
                await refuse(scope, send, self.guard.render(exc))
                return
        if scope["type"] == "http" and path in self.guard.metadata_paths:
            document = self.guard.metadata_document(scope.get("app", self.app))
            await _respond(send, Challenge(200, _METADATA_HEADERS, document))
            return
        if self.guard.is_public(path):
            await self.app(scope, receive, send)
            return
        try:
            values, query = credentials(scope)
            token = self.guard.cached(values, query)  # a hit: nothing to await
            if token is None:
                token = await self.guard.aauthenticate(values, query)
            if policy is not None:  # websocket handshakes are GETs
                self.guard.enforce(scope.get("method", "GET"), path, token)
        except (BearerError, UpstreamUnavailableError) as exc:
            await refuse(scope, send, self.guard.render(exc))
            return
        scope[SCOPE_KEY] = token
        scope[GUARD_KEY] = self.guard
        scope["auth"] = TokenCredentials(list(token.scopes) if token else [])
        scope["user"] = TokenUser(token)
        await self.app(scope, receive, send)


def credentials(scope: Scope) -> tuple[list[str], str]:
    """The `Authorization` field lines and the query string of an ASGI request."""
    values = []
    for name, value in scope["headers"]:  # a loop: a comprehension is one more call per request
        if len(name) == 13 and name.lower() == b"authorization":  # most names: no lower()
            values.append(value.decode("latin-1"))
    return values, scope.get("query_string", b"").decode("latin-1")


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
