"""FastAPI: an OAuth2 client-credentials security scheme whose dependencies enforce scopes.

`BearerAuth.requires(...)` checks the scopes a route declares and puts them, with the scheme
(token URL from configuration or discovery, RFC 8414), into the OpenAPI document. It uses the
token `BearerAuthMiddleware` stored when the middleware is in front, and verifies it otherwise.
With DPoP on, the document names the `DPoP` HTTP scheme too (alone where only DPoP is accepted).
"""

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal, cast

try:
    from fastapi import FastAPI, HTTPException, Request, Security
    from fastapi.openapi.models import HTTPBase, OAuthFlowClientCredentials, OAuthFlows
    from fastapi.openapi.models import OAuth2 as OAuth2Model
    from fastapi.security import SecurityScopes
    from fastapi.security.base import SecurityBase
    from starlette.responses import Response
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.fastapi needs FastAPI: pip install "bearerguard[fastapi]"'
    ) from exc

from .. import asgi
from .._challenge import Challenge, Refused
from .._dpoproutes import check_declared
from .._errors import BearerError, ConfigurationError
from .._guard import Guard
from .._metadata import SCHEME_ATTR, declared_scopes
from .._proxy import TrustedProxies
from .._scopes import Requirement
from .._server import ResourceServer
from .._token import AccessToken
from ..asgi import guard_of
from ._fastapi_routes import _DPOP, _DPOP_MODEL, DPOP_SCHEME, _Requires, _requires
from .starlette import as_response

__all__ = ["DPOP_SCHEME", "PENDING_TOKEN_URL", "BearerAuth", "RefusedHTTPException"]

logger = logging.getLogger("bearerguard")

# The scheme's `tokenUrl` while it is unknown: no `token_url=` was given and discovery (RFC 8414)
# has not run yet, or the issuer is down. A relative URL, as OpenAPI allows; `install()` builds
# the document again once discovery has found the token endpoint.
PENDING_TOKEN_URL = "token-endpoint-not-discovered-yet"


class RefusedHTTPException(HTTPException):
    """A refusal rendered by the RFC 6750 renderer; `BearerAuth.install()` sends it verbatim."""

    def __init__(self, refusal: Challenge, description: str) -> None:
        super().__init__(refusal.status, description, dict(refusal.headers))
        self.refusal = refusal


class BearerAuth(SecurityBase):
    """The OAuth2 client-credentials security scheme of an API protected by `server`.

    `Security(auth, scopes=[...])` requires all the listed scopes; `auth.requires(...)` also
    takes `any_of` and `optional`. Both return the `AccessToken`. Call `auth.install(app)` to
    answer refusals with the RFC 6750 JSON body (without it FastAPI's `{"detail": ...}` body is
    sent, with the same status and headers), to serve the RFC 9728 document, and to list the
    scopes of `Security(auth, scopes=[...])` in the scheme.

    In tests, `app.dependency_overrides.update(auth.overrides(access_token(scope="...")))`
    makes every route of this scheme see that token, its scopes still checked.

    Example::

        auth = BearerAuth(server, resource="https://api.example.com")
        auth.install(app)

        @app.get("/orders")
        async def orders(token: AccessToken = auth.requires("orders.read")) -> list[str]: ...
    """

    def __new__(cls, server: ResourceServer, **_: Any) -> "BearerAuth":
        # With both schemes accepted, `Security(auth, ...)` names DPoP as an alternative too.
        both = cls is BearerAuth and server.dpop is not None and not server.dpop.required
        return super().__new__(_BearerOrDPoP if both else cls)

    def __init__(
        self,
        server: ResourceServer,
        *,
        token_url: str | None = None,
        scopes: Mapping[str, str] | None = None,
        realm: str | None = None,
        resource: str | None = None,
        scheme_name: str = "OAuth2ClientCredentials",
        description: str | None = None,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.guard = Guard(server, realm=realm, resource=resource, proxies=proxies)
        # DPoP only: the document names the DPoP scheme, not a flow whose tokens are refused.
        self._dpop_only = server.dpop is not None and server.dpop.required
        self.scheme_name = DPOP_SCHEME if self._dpop_only else scheme_name
        self.description = description
        self._token_url = token_url
        if scopes is not None and not isinstance(scopes, Mapping):
            raise ConfigurationError("scopes must map scope names to descriptions", field="scopes")
        self._scopes = dict(scopes or {})
        self._requirements: dict[tuple[str, ...], Requirement] = {}  # of Security(auth, ...)
        self._requires: dict[Requirement, _Requires] = {}  # one dependency per requirement
        self._pending = False  # the last model built had no token URL yet
        setattr(self, SCHEME_ATTR, True)  # its `Security(auth, scopes=...)` scopes are declared

    @property
    def model(self) -> OAuth2Model | HTTPBase:  # type: ignore[override]
        """Built when the OpenAPI document is, so the discovered token endpoint can be used;
        `PENDING_TOKEN_URL` until it is known (never an error: /docs must not answer 500).
        The DPoP scheme when the server accepts DPoP alone."""
        if self._dpop_only:
            return _DPOP_MODEL
        token_url = self._token_url or self.guard.server.token_endpoint()
        if token_url is None and not self._pending:
            logger.warning(
                "openapi: the token endpoint is not known yet (no token_url=, discovery has not "
                "run); tokenUrl is %r until it is",
                PENDING_TOKEN_URL,
            )
        self._pending = token_url is None
        flow = OAuthFlowClientCredentials(
            tokenUrl=token_url or PENDING_TOKEN_URL, scopes=self._scopes
        )
        return OAuth2Model(flows=OAuthFlows(clientCredentials=flow), description=self.description)

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> AccessToken:
        # A requirement that is not optional admits a token or raises.
        return cast(AccessToken, await self.admit(request, self._requirement(security_scopes)))

    def _requirement(self, security_scopes: SecurityScopes) -> Requirement:
        """The requirement of a route's `Security(auth, scopes=[...])`, built once per scope list
        (the lists are the app's routes', so the map is as large as the app)."""
        names = tuple(security_scopes.scopes)
        requirement = self._requirements.get(names)
        if requirement is None:
            requirement = self._requirements[names] = Requirement.of(*names)
        return requirement

    def requires(
        self,
        *all_of: str,
        any_of: Iterable[str] = (),
        optional: bool = False,
        dpop: Literal["required"] | None = None,
    ) -> Any:
        """A dependency requiring these scopes; they appear on the route in the OpenAPI document.

        OpenAPI cannot say "one of", so an any-of route lists all its alternatives there.
        `dpop="required"` needs a DPoP-bound token (see `Requirement`), on a server with DPoP
        on (`ConfigurationError` here otherwise); the route names the DPoP scheme alone.
        """
        requirement = Requirement.of(*all_of, any_of=any_of, optional=optional, dpop=dpop)
        if requirement.names_dpop:
            check_declared(self.guard.server.dpop, "dpop")
        for scope in requirement.scopes:
            self._scopes.setdefault(scope, "")
        # The same requirement gets the same dependency: `dependency_overrides` can name it.
        dependency = self._requires.get(requirement)
        if dependency is None:
            dependency = self._requires[requirement] = _requires(
                self, requirement, self.guard.server.dpop
            )
        return Security(dependency, scopes=sorted(requirement.scopes))

    def overrides(self, token: AccessToken | None) -> dict[Callable[..., Any], Callable[..., Any]]:
        """`app.dependency_overrides` for tests: every route of this scheme sees `token`.

        Each route's requirement is still checked against it (403 for a missing scope, 401 for
        `token=None` unless optional), and refusals are rendered as usual; no header is needed
        and nothing is verified. Call it once the routes are declared.
        """

        def fake(requirement: Requirement | None) -> Callable[..., Any]:
            async def dependency(
                request: Request, security_scopes: SecurityScopes
            ) -> AccessToken | None:
                needs = requirement or self._requirement(security_scopes)
                guard = guard_of(request.scope) or self.guard
                try:
                    guard.check(needs, token)
                except BearerError as exc:
                    raise RefusedHTTPException(guard.render(exc), exc.reason.value) from None
                return token

            return dependency

        found: dict[Callable[..., Any], Callable[..., Any]] = {self: fake(None)}
        for requirement, dependency in self._requires.items():
            found[dependency] = fake(requirement)
        return found

    async def admit(self, request: Request, requirement: Requirement) -> AccessToken | None:
        """The request's token if it meets `requirement`, else `RefusedHTTPException`."""
        scope = request.scope
        guard = guard_of(scope) or self.guard  # the middleware's, when it is in front
        try:
            return await guard.aadmit(requirement, scope, asgi.ADAPTER)
        except Refused as refused:
            raise RefusedHTTPException(refused.challenge, refused.description) from None

    def install(self, app: FastAPI) -> None:
        """Send refusals verbatim, and serve the RFC 9728 document if `resource` was given."""
        app.add_exception_handler(RefusedHTTPException, _send_refusal)  # type: ignore[arg-type]

        async def metadata(request: Request) -> Response:
            document = self.guard.metadata_document(request.app)
            return Response(document, media_type="application/json")

        for path in sorted(self.guard.metadata_paths):
            app.add_api_route(path, metadata, include_in_schema=False)
        build = app.openapi

        def openapi() -> dict[str, Any]:
            pending = app.openapi_schema is not None and self._pending
            if pending and self.guard.server.token_endpoint() is not None:
                app.openapi_schema = None  # discovery has run since: the real token URL
            if app.openapi_schema is None:
                # `Security(auth, scopes=[...])` scopes, as the RFC 9728 document finds them.
                for scope in sorted(declared_scopes(app)):
                    self._scopes.setdefault(scope, "")
            return build()

        app.openapi = openapi  # type: ignore[method-assign]


class _BearerOrDPoP(BearerAuth):
    """`BearerAuth` of a server accepting both schemes: its routes name DPoP as an alternative."""

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        security_scopes: SecurityScopes,
        _dpop: Annotated[None, Security(_DPOP)],
    ) -> AccessToken:
        return await super().__call__(request, security_scopes)


async def _send_refusal(request: Request, exc: RefusedHTTPException) -> Response:
    return as_response(exc.refusal)
