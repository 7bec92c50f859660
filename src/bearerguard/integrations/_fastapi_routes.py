"""The dependencies FastAPI's `BearerAuth` hands out for its routes, and the DPoP scheme they name
in the OpenAPI document (RFC 9449): `_Requires` is one route's requirement, `_RequiresOrDPoP`
names DPoP as an alternative on a server accepting both schemes, and `_DPOP` declares the `DPoP`
HTTP scheme (alone on a route only a DPoP-bound token can meet).
"""

from typing import Annotated, Protocol, cast

from fastapi import Request, Security
from fastapi.openapi.models import HTTPBase
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.security.base import SecurityBase

from .._dpop import DPoPPolicy
from .._metadata import REQUIREMENT_ATTR
from .._scopes import Requirement
from .._token import AccessToken


class _Scheme(Protocol):
    """What a route's dependency asks of the scheme it names: `BearerAuth`, or `_DPOP`."""

    scheme_name: str

    @property
    def model(self) -> object: ...  # FastAPI's security model of the scheme


class _Auth(_Scheme, Protocol):
    """What a route's dependency asks of its `BearerAuth` (which imports this module)."""

    async def admit(self, request: Request, requirement: Requirement) -> AccessToken | None: ...


# The name of the DPoP scheme in the OpenAPI document's `securitySchemes`.
DPOP_SCHEME = "DPoP"
_DPOP_MODEL = HTTPBase(
    scheme="DPoP",
    description=(
        "A DPoP-bound access token (RFC 9449): `Authorization: DPoP <token>` with a `DPoP` "
        "proof header signed by the key the token is bound to."
    ),
)


class _DPoPScheme(SecurityBase):
    """The DPoP scheme in the OpenAPI document: a dependency that only declares it."""

    def __init__(self) -> None:
        self.model = _DPOP_MODEL
        self.scheme_name = DPOP_SCHEME

    async def __call__(self) -> None:
        return None


_DPOP = _DPoPScheme()


class _Requires(SecurityBase):
    """One route's requirement; it shares the model and name of the scheme it names in the
    OpenAPI document (the `BearerAuth`'s, or DPoP's on a route only DPoP can meet)."""

    def __init__(
        self, auth: _Auth, requirement: Requirement, scheme: _Scheme | None = None
    ) -> None:
        self.auth = auth
        self.scheme: _Scheme = scheme or auth
        self.scheme_name = self.scheme.scheme_name
        setattr(self, REQUIREMENT_ATTR, requirement)

    @property
    def model(self) -> OAuth2Model | HTTPBase:  # type: ignore[override]
        return cast(OAuth2Model | HTTPBase, self.scheme.model)

    async def __call__(self, request: Request) -> AccessToken | None:
        return await self.auth.admit(request, getattr(self, REQUIREMENT_ATTR))


class _RequiresOrDPoP(_Requires):
    """A route of a server accepting both schemes: DPoP is named as an alternative."""

    async def __call__(  # type: ignore[override]
        self, request: Request, _dpop: Annotated[None, Security(_DPOP)]
    ) -> AccessToken | None:
        return await super().__call__(request)


def _requires(auth: _Auth, requirement: Requirement, dpop: DPoPPolicy | None) -> _Requires:
    """The dependency of a route's requirement at a server whose DPoP policy is `dpop`, naming
    the schemes it accepts."""
    if dpop is None:
        return _Requires(auth, requirement)
    if dpop.required or requirement.needs_dpop:
        return _Requires(auth, requirement, _DPOP)
    return _RequiresOrDPoP(auth, requirement)
