"""Flask: the `BearerGuard` extension, the `require()` view decorator and `current_token`.

Configuration is read only in `init_app` (`BEARERGUARD_*` keys, as for `ResourceServer.from_env`,
plus `BEARERGUARD_REALM` and `BEARERGUARD_RESOURCE`), so app factories and several apps work. A
`BEARERGUARD_*` key that nothing reads (a typo) is reported as `from_env` reports a variable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Literal, ParamSpec, TypeVar, cast

try:
    from flask import Flask, Response, current_app, g, request
    from werkzeug.local import LocalProxy
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.flask needs Flask: pip install "bearerguard[flask]"'
    ) from exc

from .. import wsgi
from .._appconfig import guard_from_settings
from .._challenge import Challenge, Refused
from .._env import PREFIX
from .._guard import Guard
from .._metadata import REQUIREMENT_ATTR
from .._policy import PolicyTable
from .._scopes import Requirement
from .._server import ResourceServer
from .._token import AccessToken
from .._validate import strings
from ..wsgi import SCOPE_KEY, BearerAuthWSGIMiddleware, guard_of

__all__ = ["BearerGuard", "current_token", "get_token", "require"]

P = ParamSpec("P")
R = TypeVar("R")
EXTENSION = "bearerguard"
_G_TOKEN = "_bearerguard_token"


class BearerGuard:
    """Protect a Flask app's views with `@require(...)`.

    Example::

        guard = BearerGuard()

        def create_app() -> Flask:
            app = Flask(__name__)
            app.config["BEARERGUARD_ISSUER"] = "https://idp.example.com"
            app.config["BEARERGUARD_AUDIENCE"] = "api://orders"
            guard.init_app(app)
            return app

    `policy=` (a `PolicyTable`) is enforced before any view runs, by the WSGI middleware that
    `init_app` puts in front of `app.wsgi_app`; every request then needs a valid token, except
    under `public_paths`.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        server: ResourceServer | None = None,
        realm: str | None = None,
        resource: str | None = None,
        policy: PolicyTable | None = None,
        public_paths: Iterable[str] = (),
        strict: bool = False,
    ) -> None:
        self.server, self.realm, self.resource = server, realm, resource
        self.policy, self.public_paths = policy, strings(public_paths, "public_paths")
        self.strict = strict  # an unknown BEARERGUARD_* key is an error, not a warning
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build this app's request policy (and server, from config unless one was given)."""
        # The settings Quart and Django read too, through the one reader they use.
        config = {k[len(PREFIX) :]: v for k, v in app.config.items() if k.startswith(PREFIX)}
        given = {"SERVER": self.server, "REALM": self.realm, "RESOURCE": self.resource}
        config |= {key: value for key, value in given.items() if value is not None}
        if self.public_paths:
            config["PUBLIC_PATHS"] = list(self.public_paths)
        if self.strict:
            config["STRICT"] = True
        guard = guard_from_settings(config, source="app.config", policy=self.policy)
        if guard.policy is not None or guard.public_paths:
            # The table (or the public paths) judges every request: the WSGI middleware goes in
            # front, with this guard, so that the views and the middleware share it.
            middleware = BearerAuthWSGIMiddleware(app.wsgi_app, guard.server)
            middleware.guard = guard
            app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions[EXTENSION] = guard
        for index, path in enumerate(sorted(guard.metadata_paths)):
            view = functools.partial(_metadata, guard, app)
            app.add_url_rule(path, f"bearerguard_metadata_{index}", view)


def require(
    *all_of: str,
    any_of: Iterable[str] = (),
    optional: bool = False,
    dpop: Literal["required"] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require every scope of `all_of` and one of `any_of` (if given) from the request's token.

    The token is the one `BearerAuthWSGIMiddleware` stored, if it is in front, or is verified
    here. `optional=True` lets a request without a token in (`get_token()` is then None).
    `dpop="required"` needs a DPoP-bound token there (see `Requirement`).
    """
    requirement = Requirement.of(*all_of, any_of=any_of, optional=optional, dpop=dpop)

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            environ = request.environ
            # The middleware's guard when it is in front (its token is in the environ).
            guard: Guard = guard_of(environ) or current_app.extensions[EXTENSION]
            try:
                token = guard.admit(requirement, environ, wsgi.ADAPTER)
            except Refused as refused:
                return _response(refused.challenge)
            setattr(g, _G_TOKEN, token)
            return current_app.ensure_sync(view)(*args, **kwargs)

        setattr(wrapper, REQUIREMENT_ATTR, requirement)
        return cast(Callable[P, R], wrapper)

    return decorate


def get_token() -> AccessToken | None:
    """The token of the current request: the one `require()` admitted, else the one the WSGI
    middleware (or `BearerGuard(policy=...)`) verified; None if neither judged this request."""
    token = g.get(_G_TOKEN)
    if token is None:
        token = request.environ.get(SCOPE_KEY)
    return cast(AccessToken | None, token)


def _current() -> AccessToken:
    if (token := get_token()) is None:
        raise RuntimeError(
            "no token: use current_token in a view decorated with require(), or behind the "
            "WSGI middleware"
        )
    return token


current_token: AccessToken = cast(AccessToken, LocalProxy(_current))


def _response(refusal: Challenge) -> Response:
    response = current_app.response_class(refusal.body, refusal.status, list(refusal.headers))
    if refusal.header("content-type") is None:
        del response.headers["content-type"]  # an empty 401 has no media type
    return response


def _metadata(guard: Guard, app: Flask) -> Response:
    return current_app.response_class(guard.metadata_document(app), mimetype="application/json")
