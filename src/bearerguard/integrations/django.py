"""Django: a `settings.MIDDLEWARE` class, and `require()` for function and class-based views.

The middleware is configured from settings and works under WSGI and ASGI, for sync and async
views (on the async path it verifies on the event loop, with no thread hop)::

    # settings.py
    MIDDLEWARE = [..., "bearerguard.integrations.django.BearerAuthMiddleware"]
    BEARERGUARD = {
        "ISSUER": "https://login.example.com/tenant",
        "AUDIENCE": "api://orders",
        "PUBLIC_PATHS": ["/admin", "/static"],
    }

It leaves the token in `request.auth` (and `get_token(request)`). Wrapping the WSGI or ASGI
application in `BearerAuthWSGIMiddleware` or `BearerAuthMiddleware` instead works too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, cast, overload

try:
    from asgiref.sync import iscoroutinefunction, markcoroutinefunction
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.signals import setting_changed
    from django.http import HttpRequest, HttpResponse
    from django.urls import get_resolver
    from django.views import View as DjangoView
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.django needs Django: pip install "bearerguard[django]"'
    ) from exc

from .. import asgi, wsgi
from .._appconfig import guard_from_settings
from .._challenge import Challenge, Refused
from .._credentials import Adapter
from .._env import PREFIX
from .._errors import BearerError, ConfigurationError, UpstreamUnavailableError
from .._guard import GUARD_KEY, SCOPE_KEY, Guard
from .._metadata import REQUIREMENT_ATTR
from .._scopes import Requirement
from .._token import AccessToken

__all__ = ["BearerAuthMiddleware", "as_response", "get_token", "require"]

View = TypeVar("View", bound=Callable[..., Any])
SETTINGS = "BEARERGUARD"


class BearerAuthMiddleware:
    """Authenticate every request (but public paths) before the view; for `settings.MIDDLEWARE`.

    Settings, in a `BEARERGUARD` dict or as `BEARERGUARD_*` names: the keys
    `ResourceServer.from_env()` reads (`ISSUER`, `AUDIENCE`, ...) or `SERVER` (a
    `ResourceServer`, or the dotted path of one), and `REALM`, `RESOURCE`, `PUBLIC_PATHS`,
    `OPTIONAL`, `SCOPES_SUPPORTED` (the options of the other middlewares).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.guard = configured_guard()
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        if (document := self._document(request)) is not None:
            return document
        guard = self.guard
        if guard.public_paths and guard.is_public(request.path_info):
            return self.get_response(request)
        try:
            store, adapter = _store_of(request)
            values, query = adapter.credentials(store)
            token = guard.cached(values, query) or guard.authenticate(
                values, query, context=adapter.context(store, guard.proxies)
            )
        except (BearerError, UpstreamUnavailableError) as exc:
            return as_response(guard.render(exc))
        _keep(request, token, guard)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> Any:
        if (document := self._document(request)) is not None:
            return document
        guard = self.guard
        if guard.public_paths and guard.is_public(request.path_info):
            return await self.get_response(request)
        try:
            store, adapter = _store_of(request)
            values, query = adapter.credentials(store)
            token = guard.cached(values, query) or await guard.aauthenticate(
                values, query, context=adapter.context(store, guard.proxies)
            )
        except (BearerError, UpstreamUnavailableError) as exc:
            return as_response(guard.render(exc))
        _keep(request, token, guard)
        return await self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A refusal raised inside a view (`Requirement.check(token)`, say) answered as RFC 6750
        says, not as a 500."""
        if isinstance(exception, BearerError | UpstreamUnavailableError):
            return as_response(self.guard.answer(exception, request.META.get(SCOPE_KEY)))
        return None

    def _document(self, request: HttpRequest) -> HttpResponse | None:
        """The RFC 9728 document, when `RESOURCE` is set and the request asks for it."""
        if self.guard.metadata_paths and request.path_info in self.guard.metadata_paths:
            urls = get_resolver(getattr(request, "urlconf", None))  # its views' requirements
            body = self.guard.metadata_document(urls)
            return HttpResponse(body, content_type="application/json")
        return None


def _keep(request: HttpRequest, token: AccessToken | None, guard: Guard) -> None:
    # In META, as the WSGI middleware leaves them in the environ, for `require()` to find.
    request.META[SCOPE_KEY] = token
    request.META[GUARD_KEY] = guard
    request.auth = token


def _store_of(request: HttpRequest) -> tuple[Mapping[str, Any], Adapter[Any]]:
    """The request's store and the adapter that reads its credentials."""
    scope = getattr(request, "scope", None)  # ASGI: each header line, as sent
    return (scope, asgi.ADAPTER) if scope is not None else (request.META, wsgi.ADAPTER)


def require(
    *all_of: str,
    any_of: Iterable[str] = (),
    optional: bool = False,
    dpop: Literal["required"] | None = None,
) -> Callable[[View], View]:
    """Require every scope of `all_of` and one of `any_of` (if given) from the request's token.

    Decorates function views and view methods, sync or async, and class-based views (their
    `dispatch`). The token is the one a bearerguard middleware verified (this module's, or the
    WSGI or ASGI one around the application); it is in `request.auth` and `get_token(request)`.
    `optional=True` lets a request without a token in (with an optional middleware); a token
    that is sent must still qualify.
    `dpop="required"` needs a DPoP-bound token there (see `Requirement`).
    """
    requirement = Requirement.of(*all_of, any_of=any_of, optional=optional, dpop=dpop)

    def decorate(view: View) -> View:
        if isinstance(view, type):
            if not issubclass(view, DjangoView):
                raise TypeError(f"{view.__qualname__} is not a Django View class")
            cls: Any = view
            # `dispatch` returns the handler's coroutine in an async view: await it there.
            cls.dispatch = _wrap(cls.dispatch, requirement, is_async=cls.view_is_async)
            return view
        return cast(View, _wrap(view, requirement, is_async=inspect.iscoroutinefunction(view)))

    return decorate


def _wrap(
    view: Callable[..., Any], requirement: Requirement, *, is_async: bool
) -> Callable[..., Any]:
    wrapper: Callable[..., Any]
    if is_async:

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            refusal = _admit(_request(args), requirement)
            return refusal if refusal is not None else await view(*args, **kwargs)

    else:

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refusal = _admit(_request(args), requirement)
            return refusal if refusal is not None else view(*args, **kwargs)

    functools.update_wrapper(wrapper, view)
    setattr(wrapper, REQUIREMENT_ATTR, requirement)
    return wrapper


def _request(args: tuple[Any, ...]) -> HttpRequest:
    # A view's first argument, or a method's second (after self).
    for arg in args[:2]:
        if isinstance(arg, HttpRequest):
            return arg
    raise TypeError("require(): the view was not called with a Django HttpRequest")


def get_token(request: HttpRequest) -> AccessToken | None:
    """The token a middleware verified for this request (None if it sent none)."""
    token = request.META.get(SCOPE_KEY)
    if token is None and (scope := getattr(request, "scope", None)) is not None:
        token = scope.get(SCOPE_KEY)  # under the ASGI middleware
    return cast(AccessToken | None, token)


def as_response(refusal: Challenge) -> HttpResponse:
    """A rendered refusal as a Django `HttpResponse`, sent as it is."""
    response = HttpResponse(refusal.body, status=refusal.status)
    if refusal.header("content-type") is None:
        del response["Content-Type"]  # an empty 401 has no media type
    for name, value in refusal.headers:
        response[name] = value
    return response


def _admit(request: HttpRequest, requirement: Requirement) -> HttpResponse | None:
    store, guard, adapter = verified(request)
    try:
        token = guard.admit(requirement, store, adapter)  # the middleware's token: no I/O
    except Refused as refused:
        return as_response(refused.challenge)
    request.auth = token
    return None


@overload
def verified(
    request: HttpRequest, *, required: Literal[True] = True
) -> tuple[Mapping[str, Any], Guard, Adapter[Any]]: ...
@overload
def verified(
    request: HttpRequest, *, required: bool
) -> tuple[Mapping[str, Any], Guard | None, Adapter[Any]]: ...
def verified(
    request: HttpRequest, *, required: bool = True
) -> tuple[Mapping[str, Any], Guard | None, Adapter[Any]]:
    """Where a middleware left the request's token (the store), its guard, and the adapter
    that reads the request's credentials from the store; no guard if no middleware ran and
    not `required`."""
    guard = wsgi.guard_of(request.META)  # this module's middleware, or the WSGI one
    if guard is not None:
        return request.META, guard, wsgi.ADAPTER
    scope = getattr(request, "scope", None)
    if scope is not None:
        guard = asgi.guard_of(scope)  # the ASGI middleware around the application
        if guard is not None or not required:
            return scope, guard, asgi.ADAPTER
    elif not required:
        return request.META, None, wsgi.ADAPTER
    raise ImproperlyConfigured(
        "bearerguard's require() needs a middleware: "
        "bearerguard.integrations.django.BearerAuthMiddleware in settings.MIDDLEWARE, or "
        "BearerAuthWSGIMiddleware / BearerAuthMiddleware around the application (and the "
        "view's path must not be one of its public paths)"
    )


@functools.cache
def configured_guard() -> Guard:
    """The request policy the settings describe: built once, rebuilt when they change.

    One per process, shared by the middleware and the DRF classes, so the key and token caches
    are too; `override_settings` of a `BEARERGUARD` setting builds a new one.
    """
    return guard_from_settings(_settings(), source=SETTINGS)


def _settings() -> dict[str, object]:
    """The `BEARERGUARD` dict and the `BEARERGUARD_*` settings, by key without the prefix."""
    nested = getattr(settings, SETTINGS, None) or {}
    if not isinstance(nested, Mapping) or not all(isinstance(key, str) for key in nested):
        raise ConfigurationError(f"{SETTINGS} must be a dict with string keys")
    config = {key.upper(): value for key, value in nested.items()}
    for name in dir(settings):
        if name.startswith(PREFIX) and (key := name[len(PREFIX) :]) and key.isupper():
            if key in config:
                raise ConfigurationError(f"{name} is also {SETTINGS}[{key!r}]: set one")
            config[key] = getattr(settings, name)
    return config


def _settings_changed(*, setting: str, **_: Any) -> None:
    if setting == SETTINGS or setting.startswith(PREFIX):
        configured_guard.cache_clear()


setting_changed.connect(_settings_changed, dispatch_uid="bearerguard.configured_guard")
