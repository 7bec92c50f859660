"""FastAPI: an OAuth2 client-credentials security scheme whose dependencies enforce scopes.

`BearerAuth.requires(...)` checks the scopes a route declares and puts them, with the scheme
(token URL from configuration or discovery, RFC 8414), into the OpenAPI document. It uses the
token `BearerAuthMiddleware` stored when the middleware is in front, and verifies it otherwise.
"""

from collections.abc import Iterable, Mapping
from typing import Any, cast

try:
    from fastapi import FastAPI, HTTPException, Request, Security
    from fastapi.openapi.models import OAuth2 as OAuth2Model
    from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
    from fastapi.security import SecurityScopes
    from fastapi.security.base import SecurityBase
    from starlette.responses import Response
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'bearerguard.integrations.fastapi needs FastAPI: pip install "bearerguard[fastapi]"'
    ) from exc

from .._challenge import Challenge
from .._errors import ConfigurationError
from .._guard import Guard, Refused
from .._metadata import REQUIREMENT_ATTR
from .._scopes import Requirement
from .._server import ResourceServer
from .._token import AccessToken
from ..asgi import credentials, guard_of
from .starlette import as_response

__all__ = ["BearerAuth", "RefusedHTTPException"]


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
    sent, with the same status and headers) and to serve the RFC 9728 document.

    Example::

        auth = BearerAuth(server, resource="https://api.example.com")
        auth.install(app)

        @app.get("/orders")
        async def orders(token: AccessToken = auth.requires("orders.read")) -> list[str]: ...
    """

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
    ) -> None:
        self.guard = Guard(server, realm=realm, resource=resource)
        self.scheme_name = scheme_name
        self.description = description
        self._token_url = token_url
        if scopes is not None and not isinstance(scopes, Mapping):
            raise ConfigurationError("scopes must map scope names to descriptions", field="scopes")
        self._scopes = dict(scopes or {})
        self._requirements: dict[tuple[str, ...], Requirement] = {}

    @property
    def model(self) -> OAuth2Model:  # type: ignore[override]
        """Built when the OpenAPI document is, so the discovered token endpoint can be used."""
        token_url = self._token_url or self.guard.server.token_endpoint()
        if token_url is None:
            raise ConfigurationError(
                "BearerAuth needs token_url=, or a server whose discovery has run (warm it)"
            )
        flow = OAuthFlowClientCredentials(tokenUrl=token_url, scopes=self._scopes)
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

    def requires(self, *all_of: str, any_of: Iterable[str] = (), optional: bool = False) -> Any:
        """A dependency requiring these scopes; they appear on the route in the OpenAPI document.

        OpenAPI cannot say "one of", so an any-of route lists all its alternatives there.
        """
        requirement = Requirement.of(*all_of, any_of=any_of, optional=optional)
        for scope in requirement.scopes:
            self._scopes.setdefault(scope, "")
        return Security(_Requires(self, requirement), scopes=sorted(requirement.scopes))

    async def admit(self, request: Request, requirement: Requirement) -> AccessToken | None:
        """The request's token if it meets `requirement`, else `RefusedHTTPException`."""
        scope = request.scope
        guard = guard_of(scope) or self.guard  # the middleware's, when it is in front
        try:
            return await guard.aadmit(requirement, scope, credentials)
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


class _Requires(SecurityBase):
    """One route's requirement; it shares the scheme's model and name in the OpenAPI document."""

    def __init__(self, auth: BearerAuth, requirement: Requirement) -> None:
        self.auth = auth
        self.scheme_name = auth.scheme_name
        setattr(self, REQUIREMENT_ATTR, requirement)

    @property
    def model(self) -> OAuth2Model:  # type: ignore[override]
        return self.auth.model

    async def __call__(self, request: Request) -> AccessToken | None:
        return await self.auth.admit(request, getattr(self, REQUIREMENT_ATTR))


async def _send_refusal(request: Request, exc: RefusedHTTPException) -> Response:
    return as_response(exc.refusal)
