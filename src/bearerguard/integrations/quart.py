"""Quart: the `BearerGuard` extension, the `require()` view decorator and `current_token`.

The same shape as the Flask integration, on the async path: the token is verified on the event
loop (`aauthenticate`), or taken from `BearerAuthMiddleware` when it wraps `app.asgi_app`.
Configuration is read in `init_app` (`BEARERGUARD_*` keys, as for `ResourceServer.from_env`,
plus `BEARERGUARD_REALM`, `_RESOURCE`, `_PUBLIC_PATHS`, `_OPTIONAL`, `_SCOPES_SUPPORTED`,
`_STRICT`); a key nothing reads is reported with the closest known one, as `from_env` does.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, ParamSpec, TypeVar, cast

try:
    from quart import Quart, Response, current_app, g, request
    from werkzeug.datastructures import Headers
    from werkzeug.local import LocalProxy
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.quart needs Quart: pip install "bearerguard[quart]"'
    ) from exc

from .. import asgi
from .._appconfig import guard_from_settings
from .._challenge import Challenge, Refused
from .._env import PREFIX
from .._errors import BearerError, UpstreamUnavailableError
from .._guard import SCOPE_KEY, Guard
from .._metadata import REQUIREMENT_ATTR
from .._scopes import Requirement
from .._server import ResourceServer
from .._token import AccessToken
from .._types import Scope
from ..asgi import guard_of

__all__ = ["BearerGuard", "as_response", "current_token", "get_token", "require"]

P = ParamSpec("P")
R = TypeVar("R")
EXTENSION = "bearerguard"
_G_TOKEN = "_bearerguard_token"


class BearerGuard:
    """Protect a Quart app's views with `@require(...)`.

    Example::

        app = Quart(__name__)
        BearerGuard(app, server=server, realm="orders-api")

        @app.get("/orders")
        @require("orders.read")
        async def orders():
            return {"client": current_token.client_id}
    """

    def __init__(
        self,
        app: Quart | None = None,
        *,
        server: ResourceServer | None = None,
        realm: str | None = None,
        resource: str | None = None,
        strict: bool = False,
    ) -> None:
        # strict: an unknown BEARERGUARD_* key in app.config is an error, not a warning.
        self.given = {"SERVER": server, "REALM": realm, "RESOURCE": resource, "STRICT": strict}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Build this app's request policy (and server, from config unless one was given)."""
        config = {k[len(PREFIX) :]: v for k, v in app.config.items() if k.startswith(PREFIX)}
        config |= {key: value for key, value in self.given.items() if value not in (None, False)}
        guard = guard_from_settings(config, source="app.config")
        app.extensions[EXTENSION] = guard
        # A refusal raised inside a view (`Requirement.check(token)`, say): RFC 6750, not a 500.
        app.register_error_handler(BearerError, functools.partial(_refused, guard))
        app.register_error_handler(UpstreamUnavailableError, functools.partial(_refused, guard))
        for index, path in enumerate(sorted(guard.metadata_paths)):
            view = functools.partial(_metadata, guard, app)
            app.add_url_rule(path, f"bearerguard_metadata_{index}", view)


def require(
    *all_of: str,
    any_of: Iterable[str] = (),
    optional: bool = False,
    dpop: Literal["required"] | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Require every scope of `all_of` and one of `any_of` (if given) from the request's token.

    The token is the one `BearerAuthMiddleware` stored, if it is in front, or is verified here
    (without blocking the event loop). `optional=True` lets a request without a token in
    (`get_token()` is then None).
    `dpop="required"` needs a DPoP-bound token there (see `Requirement`).
    """
    requirement = Requirement.of(*all_of, any_of=any_of, optional=optional, dpop=dpop)

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            scope = cast(Scope, request.scope)
            # The middleware's guard when it is in front (its token is in the scope).
            guard: Guard = guard_of(scope) or current_app.extensions[EXTENSION]
            try:
                token = await guard.aadmit(requirement, scope, asgi.ADAPTER)
            except Refused as refused:
                return as_response(refused.challenge)
            setattr(g, _G_TOKEN, token)
            return await current_app.ensure_async(view)(*args, **kwargs)

        setattr(wrapper, REQUIREMENT_ATTR, requirement)
        return cast(Callable[P, Awaitable[R]], wrapper)

    return decorate


def get_token() -> AccessToken | None:
    """The token of the current request: the one `require()` admitted, else the one
    `BearerAuthMiddleware` (wrapping `app.asgi_app`) verified; None if neither judged it."""
    token = g.get(_G_TOKEN)
    if token is None:
        token = request.scope.get(SCOPE_KEY)
    return cast(AccessToken | None, token)


def _current() -> AccessToken:
    if (token := get_token()) is None:
        raise RuntimeError("no token: use current_token in a view decorated with require()")
    return token


current_token: AccessToken = cast(AccessToken, LocalProxy(_current))


def as_response(refusal: Challenge) -> Response:
    """A rendered refusal as a Quart `Response`, sent as it is."""
    headers = Headers(list(refusal.headers))
    response = current_app.response_class(refusal.body, refusal.status, headers)
    if refusal.header("content-type") is None:
        del response.headers["content-type"]  # an empty 401 has no media type
    return response


async def _refused(guard: Guard, error: BearerError | UpstreamUnavailableError) -> Response:
    return as_response(guard.answer(error, get_token()))


async def _metadata(guard: Guard, app: Quart) -> Response:
    body = guard.metadata_document(app)
    return current_app.response_class(body, content_type="application/json")
