"""Litestar: a plugin (the middleware and the exception handlers), and a `requires()` guard.

`BearerAuthPlugin` puts `BearerAuthMiddleware` in front of every route, serves the RFC 9728
document when `resource=` is given, and answers every bearerguard refusal with its RFC 6750
response, including a `Requirement.check()` raised in a handler (a 500 without it).
`request.auth` is the `AccessToken` and `request.user` a `TokenUser`::

    app = Litestar(
        route_handlers=[orders],
        plugins=[BearerAuthPlugin(server, realm="orders-api")],
    )

    @get("/orders", guards=[requires("orders.read")])
    async def orders(request: Request[TokenUser, AccessToken, State]) -> dict[str, str]: ...
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Literal, Unpack, cast

try:
    from litestar import Request, Response, get
    from litestar.config.app import AppConfig
    from litestar.connection import ASGIConnection
    from litestar.exceptions import WebSocketException
    from litestar.handlers.base import BaseRouteHandler
    from litestar.plugins import InitPlugin
    from litestar.response.base import ASGIResponse
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.litestar needs Litestar: pip install "bearerguard[litestar]"'
    ) from exc

from .. import asgi
from .._challenge import Challenge, Refused, challenge_for
from .._errors import BearerError, UpstreamUnavailableError
from .._guard import SCOPE_KEY, Guard, GuardOptions
from .._metadata import REQUIREMENT_ATTR
from .._scopes import Requirement
from .._server import ResourceServer
from .._token import AccessToken
from .._types import ASGIApp, Receive, Scope, Send
from ..asgi import BearerAuthMiddleware, guard_of

__all__ = ["BearerAuthPlugin", "as_response", "get_token", "requires"]

LitestarGuard = Callable[
    [ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Coroutine[Any, Any, None]
]


class BearerAuthPlugin(InitPlugin):
    """Authenticate every route's requests; refusals are RFC 6750 answers.

    The keyword arguments are those of `BearerAuthMiddleware` (`realm`, `resource`,
    `public_paths`, `optional`, `scopes_supported`, `policy`).
    """

    __slots__ = ("guard", "metadata_paths", "server")

    def __init__(self, server: ResourceServer, **options: Unpack[GuardOptions]) -> None:
        self.server = server
        self.guard = Guard(server, **options)  # every route's middleware shares it
        self.metadata_paths = sorted(self.guard.metadata_paths)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        # The outermost (Litestar's types are narrower than the ASGI ones we use).
        app_config.middleware.insert(0, cast(Any, self.middleware))
        app_config.exception_handlers.update(
            {
                Refused: _refused,
                BearerError: _refusal,
                UpstreamUnavailableError: _refusal,
            }
        )
        if self.metadata_paths:  # a route, so that the middleware sees the path (it answers)
            app_config.route_handlers.append(
                get(self.metadata_paths, include_in_schema=False, sync_to_thread=False)(_unreached)
            )
        return app_config

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """The middleware of one route (Litestar builds one per route)."""
        return BearerAuthMiddleware._sharing(_TokenAsAuth(app), self.guard)


class _TokenAsAuth:
    """Make `request.auth` the `AccessToken` (the middleware left its `TokenUser` there)."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if SCOPE_KEY in scope:
            scope["auth"] = scope[SCOPE_KEY]
        await self.app(scope, receive, send)


def _unreached() -> None:  # pragma: no cover - the middleware answers the metadata paths
    raise RuntimeError("the RFC 9728 document is served by the middleware")


def requires(
    *all_of: str,
    any_of: Iterable[str] = (),
    optional: bool = False,
    dpop: Literal["required"] | None = None,
) -> LitestarGuard:
    """A guard requiring every scope of `all_of` and one of `any_of` (if given).

    `optional=True` lets a request without a token in (with an optional plugin); a token
    that is sent must still have the scopes. Use on handlers, controllers or routers:
    `guards=[requires("orders.read")]`. A refused websocket is closed with 1008 before accept.
    `dpop="required"` needs a DPoP-bound token there (see `Requirement`).
    """
    requirement = Requirement.of(*all_of, any_of=any_of, optional=optional, dpop=dpop)

    # async, though it never awaits: Litestar runs a sync guard in a worker thread.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        scope = cast(Scope, connection.scope)
        bearer = guard_of(scope)
        if bearer is None:
            raise RuntimeError(
                "requires() needs BearerAuthPlugin (and the path must not be a public path)"
            )
        try:
            bearer.admit(requirement, scope, asgi.ADAPTER)  # the middleware's token: no I/O
        except Refused as refused:
            if scope["type"] == "websocket":  # before accept: close 1008, as the middleware does
                raise WebSocketException(detail=refused.description, code=1008) from refused
            raise

    setattr(guard, REQUIREMENT_ATTR, requirement)
    return guard


def get_token(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessToken | None:
    """The token the plugin's middleware verified (None: optional, none sent)."""
    try:
        token: AccessToken | None = cast(Scope, connection.scope)[SCOPE_KEY]
    except KeyError:
        raise RuntimeError(
            "no token: BearerAuthPlugin did not run, or the path is public"
        ) from None
    return token


class _Response(Response[bytes]):
    """A rendered refusal, sent as it is: no media type is added to an empty body."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        response = super().to_asgi_response(*args, **kwargs)
        if not self.content:
            del response.headers["content-type"]  # an empty 401 has no media type
        return response


def as_response(refusal: Challenge) -> Response[bytes]:
    """A rendered refusal as a Litestar `Response`, sent as it is."""
    headers = dict(refusal.headers)
    return _Response(refusal.body, status_code=refusal.status, headers=headers)


def _refused(request: Request[Any, Any, Any], exc: Refused) -> Response[bytes]:
    return as_response(exc.challenge)


def _refusal(
    request: Request[Any, Any, Any], exc: BearerError | UpstreamUnavailableError
) -> Response[bytes]:
    """A refusal raised in a handler (`Requirement.check()`), rendered as the middleware's."""
    scope = cast(Scope, request.scope)
    guard = guard_of(scope)
    if guard is None:
        return as_response(challenge_for(exc))
    return as_response(guard.answer(exc, scope.get(SCOPE_KEY)))
