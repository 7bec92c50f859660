"""Django: a `require()` view decorator over `BearerAuthWSGIMiddleware`.

Wrap the WSGI application once and decorate views; Django's `request.META` is the WSGI environ,
where the middleware left the request's token and its renderer, so refusals are the same RFC 6750
answers as everywhere else::

    # wsgi.py
    application = BearerAuthWSGIMiddleware(get_wsgi_application(), server, optional=True)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

try:
    from django.core.exceptions import ImproperlyConfigured
    from django.http import HttpRequest, HttpResponse
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.django needs Django: pip install "bearerguard[django]"'
    ) from exc

from .._guard import SCOPE_KEY, Refused
from .._metadata import REQUIREMENT_ATTR
from .._scopes import Requirement
from .._token import AccessToken
from ..wsgi import credentials, guard_of

__all__ = ["get_token", "require"]

View = TypeVar("View", bound=Callable[..., Any])


def require(
    *all_of: str, any_of: Iterable[str] = (), optional: bool = False
) -> Callable[[View], View]:
    """Require every scope of `all_of` and one of `any_of` (if given) from the request's token.

    Works for sync and async views. `optional=True` lets a request without a token in
    (`get_token(request)` is then None); a token that is sent must still qualify.
    """
    requirement = Requirement.of(*all_of, any_of=any_of, optional=optional)

    def decorate(view: View) -> View:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refusal = _admit(request, requirement)
                return refusal if refusal is not None else await view(request, *args, **kwargs)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(view)
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refusal = _admit(request, requirement)
                return refusal if refusal is not None else view(request, *args, **kwargs)

        setattr(wrapper, REQUIREMENT_ATTR, requirement)
        return cast(View, wrapper)

    return decorate


def get_token(request: HttpRequest) -> AccessToken | None:
    """The token the middleware verified for this request (None if it sent none)."""
    return cast(AccessToken | None, request.META.get(SCOPE_KEY))


def _admit(request: HttpRequest, requirement: Requirement) -> HttpResponse | None:
    environ = request.META
    guard = guard_of(environ)
    if guard is None:
        raise ImproperlyConfigured(
            "bearerguard's require() needs BearerAuthWSGIMiddleware around the WSGI application "
            "(and the view's path must not be one of its public_paths)"
        )
    try:
        guard.admit(requirement, environ, credentials)  # the middleware stored the token too
    except Refused as refused:
        refusal = refused.challenge
        response = HttpResponse(refusal.body, status=refusal.status)
        if refusal.header("content-type") is None:
            del response["Content-Type"]  # an empty 401 has no media type
        for name, value in refusal.headers:
            response[name] = value
        return response
    return None
