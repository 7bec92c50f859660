"""Django REST framework: an authentication class and a scope permission class.

`BearerAuthentication` verifies the request's bearer token (or takes the one bearerguard's
Django middleware verified) and `HasScopes` checks the scopes a view declares in
`required_scopes`. Refusals go through DRF's own exception handling with their RFC 6750
status and `WWW-Authenticate` challenge (`Retry-After` on a 503); the body is DRF's
`{"detail": ...}` with the refusal's fixed text, and its code is the RFC 6750 error::

    class Orders(APIView):
        authentication_classes = [BearerAuthentication]
        permission_classes = [HasScopes]
        required_scopes = {"GET": ["orders.read"], "POST": ["orders.write"]}

The server comes from the middleware when it is in front, else from the `BEARERGUARD`
settings (see `bearerguard.integrations.django`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

try:
    from django.core.exceptions import ImproperlyConfigured
    from rest_framework import exceptions
    from rest_framework.authentication import BaseAuthentication
    from rest_framework.permissions import BasePermission
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.drf needs Django REST framework: pip install "bearerguard[drf]"'
    ) from exc

from .._errors import BearerError, UpstreamUnavailableError
from .._guard import SCOPE_KEY, Guard
from .._scopes import Requirement
from .._token import AccessToken
from ..asgi import TokenUser
from .django import configured_guard, verified

__all__ = ["BearerAuthentication", "HasScopes", "Refusal"]

_DENY = Requirement(either=())  # alternatives of which none is met


class Refusal(exceptions.APIException):  # type: ignore[misc]
    """A bearerguard refusal as DRF's exception: RFC 6750 status, challenge and code."""

    def __init__(self, exc: BearerError | UpstreamUnavailableError, guard: Guard) -> None:
        rendered = guard.render(exc)
        code = exc.error if isinstance(exc, BearerError) else "temporarily_unavailable"
        super().__init__(exc.reason.value, code)
        self.status_code = rendered.status
        self.auth_header = rendered.header("www-authenticate")  # DRF's exception_handler sends
        if isinstance(exc, UpstreamUnavailableError) and exc.retry_after is not None:
            self.wait = max(1, math.ceil(exc.retry_after))  # ... these two as headers


class BearerAuthentication(BaseAuthentication):  # type: ignore[misc]
    """Authenticate with an `Authorization: Bearer` token.

    `request.auth` is the `AccessToken` and `request.user` a `TokenUser` (authenticated, named
    by the client id). A request without a bearer token is left to the next authentication
    class (None); an invalid token is refused here.
    """

    def authenticate(self, request: Any) -> tuple[TokenUser, AccessToken] | None:
        store, found, adapter = verified(request._request, required=False)
        guard = found or configured_guard()
        try:
            if found is not None:
                token = store[SCOPE_KEY]  # the middleware verified it: no I/O
            else:
                values, query = adapter.credentials(store)
                context = adapter.context(store, guard.proxies)
                token = guard.authenticate(values, query, optional=True, context=context)
        except (BearerError, UpstreamUnavailableError) as exc:
            raise Refusal(exc, guard) from exc
        return None if token is None else (TokenUser(token, guard), token)

    def authenticate_header(self, request: Any) -> str | None:
        """The challenge of a request DRF refuses as not authenticated (RFC 6750 §3.1): the
        server's, which names DPoP and its algorithms too when DPoP is on (RFC 9449 §7.1)."""
        guard = _guard(request._request)
        return guard.render(guard.server._missing()).header("www-authenticate")


class HasScopes(BasePermission):  # type: ignore[misc]
    """Allow a request whose token has the scopes the view declares in `required_scopes`.

    `required_scopes` is a list of scopes (all are needed), a `Requirement` (for any-of), or a
    dict from HTTP method to either (a method not in it is refused; HEAD falls back to GET). A
    request without a token is DRF's "not authenticated" (401 with the `Bearer` challenge); a
    token without the scopes is a 403 `insufficient_scope` naming them.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        requirement = _requirement(getattr(view, "required_scopes", None), request.method)
        token = request.auth if isinstance(request.auth, AccessToken) else None
        if token is None:
            return False  # DRF answers 401 with authenticate_header()
        guard = _guard(request._request)
        try:
            guard.check(requirement, token)
        except BearerError as exc:
            raise Refusal(exc, guard) from exc
        return True


def _requirement(declared: object, method: str) -> Requirement:
    if isinstance(declared, Mapping):
        if method not in declared and method == "HEAD":
            method = "GET"
        if method not in declared:
            return _DENY  # a method the view does not list: no token qualifies
        declared = declared[method]
    if isinstance(declared, Requirement):
        return declared
    if isinstance(declared, str) or not isinstance(declared, Iterable):
        raise ImproperlyConfigured(  # as DRF says of a view it cannot use (fails closed)
            "required_scopes must be a list of scopes, a Requirement, or a dict of them by "
            f"HTTP method, not {type(declared).__name__}"
        )
    return Requirement.of(*declared)


def _guard(django_request: Any) -> Guard:
    """The guard of the middleware in front, else the one the settings describe."""
    return verified(django_request, required=False)[1] or configured_guard()
