"""Routes that require DPoP (`Requirement(dpop="required")`) on a server accepting both schemes:
what `Guard` adds around `Requirement.check` for them, and the configuration check the helpers
make when they know the server as the route is declared.

A request used DPoP exactly when the accepted token carries `cnf.jkt` (with DPoP on, the server
refuses a bound token without its proof and the DPoP scheme with an unbound token), so a route
judges the token, not the request. With DPoP off nothing proved a binding: every token is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import (
    BearerError,
    ConfigurationError,
    DPoPBindingError,
    DPoPMissingTokenError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
    UpstreamUnavailableError,
)
from ._scopes import Requirement
from ._token import AccessToken

if TYPE_CHECKING:
    from ._dpop import DPoPPolicy
    from ._server import ResourceServer


def check_route(
    requirement: Requirement, token: AccessToken | None, dpop: DPoPPolicy | None
) -> None:
    """`requirement.check(token)` of a requirement naming DPoP, at a server whose DPoP policy is
    `dpop`: its binding refusal names the proof algorithms (RFC 9449 §7.1)."""
    if token is not None and dpop is None:
        raise InvalidTokenError(Reason.DPOP_OFF)
    try:
        requirement.check(token)
    except DPoPBindingError as exc:
        exc.algs = tuple(dpop.algorithms) if dpop else ()
        raise


def at_route(
    exc: BearerError | UpstreamUnavailableError, requirement: Requirement, server: ResourceServer
) -> BearerError | UpstreamUnavailableError:
    """The refusal of a request without credentials on a route of `requirement` (any other
    refusal as it is): the server's challenges (`Requirement.check` knows no server), and with
    both schemes accepted, DPoP's alone on a route only a DPoP-bound token can meet."""
    if not isinstance(exc, MissingTokenError):
        return exc
    if type(exc) is MissingTokenError:
        exc = server._missing()
    if isinstance(exc, DPoPMissingTokenError) and exc.bearer and requirement.needs_dpop:
        return DPoPMissingTokenError(algs=exc.algs, bearer=False)
    return exc


def check_declared(dpop: DPoPPolicy | None, field: str) -> None:
    """A route requirement naming DPoP on a server with DPoP off (`dpop` None) is a
    configuration error, where a helper knows the server as the route is declared (elsewhere
    `check_route` refuses every token)."""
    if dpop is None:
        raise ConfigurationError(
            'a route requires DPoP (dpop="required") but the server has dpop="off": '
            'use ResourceServer(dpop="allowed")',
            field=field,
        )
