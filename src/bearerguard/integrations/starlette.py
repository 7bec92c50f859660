"""Starlette route requirements over `BearerAuthMiddleware`: `requires()` and `get_token()`.

Refusals are the middleware's RFC 6750 answers (same realm and `resource_metadata`): a 403
`insufficient_scope` response, or for a websocket a close before accept.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, Literal, ParamSpec, TypeVar, cast

try:
    from starlette.requests import HTTPConnection
    from starlette.responses import Response
    from starlette.websockets import WebSocket
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.starlette needs Starlette: pip install "bearerguard[starlette]"'
    ) from exc

from .. import asgi
from .._challenge import Challenge, Refused
from .._guard import SCOPE_KEY, Guard
from .._metadata import REQUIREMENT_ATTR
from .._scopes import Requirement
from .._token import AccessToken
from ..asgi import guard_of, refuse

__all__ = ["get_token", "requires"]

P = ParamSpec("P")
R = TypeVar("R")


def get_token(conn: HTTPConnection) -> AccessToken | None:
    """The token `BearerAuthMiddleware` verified for this request (None: optional, none sent)."""
    try:
        return cast(AccessToken | None, conn.scope[SCOPE_KEY])
    except KeyError:
        raise RuntimeError(
            "no token: BearerAuthMiddleware is not in front of this endpoint, or its path is public"
        ) from None


def requires(
    *all_of: str,
    any_of: Iterable[str] = (),
    optional: bool = False,
    dpop: Literal["required"] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require every scope of `all_of` and one of `any_of` (if given) from the request's token.

    Decorates function endpoints and `HTTPEndpoint` methods, sync or async, and websocket
    endpoints; the endpoint must take a `request` or `websocket` parameter (checked here, at
    decoration). `optional=True` lets a request without a token in (with an optional
    middleware); a token that is sent must still have the scopes. On refusal an HTTP endpoint
    returns the RFC 6750 response instead of calling the endpoint.
    `dpop="required"` needs a DPoP-bound token there (see `Requirement`).

    Example::

        @requires("orders.read")
        async def list_orders(request: Request) -> Response: ...
    """
    requirement = Requirement.of(*all_of, any_of=any_of, optional=optional, dpop=dpop)

    def decorate(endpoint: Callable[P, R]) -> Callable[P, R]:
        name, index = _connection_parameter(endpoint)

        def refusal(
            args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[HTTPConnection, Challenge | None]:
            conn: HTTPConnection = kwargs[name] if name in kwargs else args[index]
            try:
                # The middleware's token is in the scope, so admitting it never waits on I/O.
                _guard(conn).admit(requirement, conn.scope, asgi.ADAPTER)
            except Refused as refused:
                return conn, refused.challenge
            return conn, None

        wrapper: Callable[..., Any]
        if name == "websocket":

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                conn, refused = refusal(args, kwargs)
                if refused is None:
                    return await endpoint(*args, **kwargs)  # type: ignore[misc]
                await refuse(conn.scope, cast(WebSocket, conn).send, refused)
                return None

        elif inspect.iscoroutinefunction(endpoint):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                _, refused = refusal(args, kwargs)
                if refused is None:
                    return await endpoint(*args, **kwargs)
                return as_response(refused)

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                _, refused = refusal(args, kwargs)
                if refused is None:
                    return endpoint(*args, **kwargs)
                return as_response(refused)

        functools.update_wrapper(wrapper, endpoint)
        setattr(wrapper, REQUIREMENT_ATTR, requirement)
        return cast(Callable[P, R], wrapper)

    return decorate


def as_response(refusal: Challenge) -> Response:
    """A rendered refusal as a Starlette `Response`, sent as it is."""
    return Response(refusal.body, refusal.status, dict(refusal.headers))


def _guard(conn: HTTPConnection) -> Guard:
    """The guard of the middleware that verified the request's token."""
    get_token(conn)  # a clear error when the middleware did not run for this path
    guard = guard_of(conn.scope)
    if guard is None:
        raise RuntimeError(
            'scope["user"] is not the TokenUser BearerAuthMiddleware left: a middleware '
            "behind it replaced it"
        )
    return guard


def _connection_parameter(endpoint: Callable[..., Any]) -> tuple[str, int]:
    for index, parameter in enumerate(inspect.signature(endpoint).parameters.values()):
        if parameter.name in ("request", "websocket"):
            return parameter.name, index
    raise TypeError(f"{endpoint.__qualname__} has no 'request' or 'websocket' parameter")
