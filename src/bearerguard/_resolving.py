"""Role resolution at request time: a token's role ids turned into privileges, after the caches.

The caches hold tokens as issued; privileges are applied per request (they change at the AS at
any time) from the resolver's own short-lived cache (`RoleResolver`). A failed lookup is a 503,
reported as a refusal; each resolution that named roles is a `RolesResolved` event.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING

from ._errors import Seen, UpstreamUnavailableError
from ._events import Events, RolesResolved
from ._token import AccessToken
from ._types import Clock

if TYPE_CHECKING:  # the server loads the resolvers: no import level spent here
    from ._roles import RoleResolver


class Roles:
    """The role resolvers of one server: by issuer for JWTs, one for introspected tokens."""

    def __init__(
        self,
        by_issuer: dict[str, RoleResolver],
        introspected: RoleResolver | None,
        events: Events,
        refused: Callable[[UpstreamUnavailableError, Seen], None],
        timer: Clock,
    ) -> None:
        self._by_issuer = by_issuer
        self._introspected = introspected
        self._events = events
        self._refused = refused
        self._timer = timer
        self.active = bool(by_issuer) or introspected is not None

    def resolve(self, access: AccessToken) -> AccessToken:
        """`access` with its roles' privileges (sync twin); a failed lookup raises a 503."""
        if (roles := self._of(access)) is None:
            return access
        started = perf_counter() if self._events.roles else 0.0
        try:
            resolved, count, looked_up = roles.counted(access, self._timer())
        except UpstreamUnavailableError as exc:
            self._failed(access, roles, exc, started)
            raise
        self._report(access, count, looked_up, started)
        return resolved

    async def aresolve(self, access: AccessToken) -> AccessToken:
        """`access` with its roles' privileges (async twin)."""
        if (roles := self._of(access)) is None:
            return access
        started = perf_counter() if self._events.roles else 0.0
        try:
            resolved, count, looked_up = await roles.acounted(access, self._timer())
        except UpstreamUnavailableError as exc:
            self._failed(access, roles, exc, started)
            raise
        self._report(access, count, looked_up, started)
        return resolved

    def _of(self, access: AccessToken) -> RoleResolver | None:
        if access.source == "introspection":
            return self._introspected
        return self._by_issuer.get(access.issuer)

    def _report(self, access: AccessToken, count: int, looked_up: int, started: float) -> None:
        if count and self._events.roles:
            duration = perf_counter() - started
            self._events.emit(RolesResolved(access.issuer, count, looked_up, None, duration))

    def _failed(
        self,
        access: AccessToken,
        roles: RoleResolver,
        exc: UpstreamUnavailableError,
        started: float,
    ) -> None:
        if self._events.roles:
            count = len(roles.role_ids(access))
            duration = perf_counter() - started
            self._events.emit(RolesResolved(access.issuer, count, count, exc.what, duration))
        self._refused(exc, Seen("token", access.issuer, None, None, access.client_id))
