"""The one home of "get the key": lookup, the refetch decision, and the single flight.

`Trusted.ready_key` answers without I/O (the shared secret, or a key of a JWKS within its TTL);
`JWKSCache` decides when a fetch is due and never fetches. `KeySource` carries the decisions
out for one server, sync and async: the issuer's JWKS is past its TTL, or `kid` is not in it
(rotation, or a stranger), or a signature failed under a `kid` whose key the issuer may have
replaced (an AS restarted with fresh keys under old kids). In every case: one fetch in flight per
issuer and at most one per cool-down, whatever the reason, so a flood of random kids or forged
signatures costs one fetch; callers that need the fetch wait for it (one upstream deadline at
most, see `_fetch`) and share its outcome, unless the last good keys can answer them meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, cast

from ._errors import BearerError, Reason, UpstreamUnavailableError
from ._singleflight import SingleFlight

if TYPE_CHECKING:  # the server imports them: no import level spent here
    from ._fetch import HTTP
    from ._jose import UnverifiedJWT
    from ._jwks import JWKSCache, JWKSStatus
    from ._keys import Key
    from ._trusted import Trusted
    from ._types import Clock

# The refusals of `Trusted.accept` that say the key does not fit the token, not the claims.
KEY_MISMATCH = frozenset({Reason.BAD_SIGNATURE, Reason.ALGORITHM})


class KeySource:
    """The keys of a server's issuers, fetched through its HTTP clients (sync and async twins)."""

    def __init__(self, caches: list[JWKSCache], http: HTTP, timer: Clock) -> None:
        self.caches = caches
        self.http = http  # the server's driver (`bearerguard check` runs its flows on it too)
        self._timer = timer
        # One JWKS fetch in flight per issuer: callers that need its keys meanwhile share it.
        self._refreshes: SingleFlight[JWKSCache, None] = SingleFlight()

    def key(self, trusted: Trusted, jwt: UnverifiedJWT) -> Key:
        """The key for `jwt` (sync twin): the shared secret, or one from the JWKS."""
        if (key := trusted.ready_key(jwt, self._timer)) is not None:
            return key
        keys, kid, alg = (
            cast("JWKSCache", trusted.keys),
            jwt.kid,
            jwt.alg,
        )  # not None: see ready_key
        if keys.needs_fetch(kid, alg, self._timer()):
            in_flight = self._refreshes.callers(keys) > 0
            if in_flight and (key := keys.stale(kid, alg, self._timer())) is not None:
                return key
            self.refresh(keys)
        return keys.select(kid, alg, self._timer())

    async def akey(self, trusted: Trusted, jwt: UnverifiedJWT) -> Key:
        """The key for `jwt` (async twin)."""
        if (key := trusted.ready_key(jwt, self._timer)) is not None:
            return key
        keys, kid, alg = (
            cast("JWKSCache", trusted.keys),
            jwt.kid,
            jwt.alg,
        )  # not None: see ready_key
        if keys.needs_fetch(kid, alg, self._timer()):
            in_flight = self._refreshes.ain_flight(keys)
            if in_flight and (key := keys.stale(kid, alg, self._timer())) is not None:
                return key
            await self.arefresh(keys)
        return keys.select(kid, alg, self._timer())

    def replaced(self, trusted: Trusted, jwt: UnverifiedJWT, key: Key, exc: BearerError) -> Key:
        """After `key` failed `jwt` with `exc`: the key the issuer now publishes under the kid,
        fetched under the same cool-down and single flight; raises `exc` if there is none."""
        keys = _refetchable(trusted, key, exc)
        if keys.may_fetch(self._timer()):
            self.refresh(keys)
        return _reselected(keys, jwt, key, exc, self._timer())

    async def areplaced(
        self, trusted: Trusted, jwt: UnverifiedJWT, key: Key, exc: BearerError
    ) -> Key:
        keys = _refetchable(trusted, key, exc)
        if keys.may_fetch(self._timer()):
            await self.arefresh(keys)
        return _reselected(keys, jwt, key, exc, self._timer())

    def refresh(self, keys: JWKSCache, *, now: bool = False) -> None:
        """Fetch `keys` (if the cool-down allows, unless `now`), or wait for the fetch in flight."""

        def fetch() -> None:  # checks again: a flight may have landed since the caller looked
            if now or keys.may_fetch(self._timer()):
                self.http.run(keys.refresh_flow(self._timer))

        try:
            self._refreshes.run(keys, fetch, wait=self.http.deadline())
        except TimeoutError:  # a fetch outlasting its deadline (an issuer trickling its bytes)
            raise UpstreamUnavailableError(f"keys of issuer {keys.issuer}") from None

    async def arefresh(self, keys: JWKSCache, *, now: bool = False) -> None:
        async def fetch() -> None:
            if now or keys.may_fetch(self._timer()):
                await self.http.arun(keys.refresh_flow(self._timer))

        await self._refreshes.arun(keys, fetch)

    def warm(self) -> list[JWKSStatus]:
        """Fetch every issuer's keys now; never raises for a down issuer."""
        for keys in self.caches:
            # A fetch already in flight that does not end in time: status() says so.
            with contextlib.suppress(UpstreamUnavailableError):
                self.refresh(keys, now=True)
        return self.status()

    async def awarm(self) -> list[JWKSStatus]:
        """Fetch every issuer's keys now, concurrently."""
        await asyncio.gather(*(self.arefresh(keys, now=True) for keys in self.caches))
        return self.status()

    def status(self) -> list[JWKSStatus]:
        now = self._timer()
        return [keys.status(now) for keys in self.caches]


def _refetchable(trusted: Trusted, key: Key, exc: BearerError) -> JWKSCache:
    """The JWKS that may hold a replacement for `key`; raises `exc` if there is none to look for
    (a shared secret is never fetched, and a refused claim has nothing to do with the key)."""
    if trusted.keys is None or key is trusted.secret or exc.reason not in KEY_MISMATCH:
        raise exc
    return trusted.keys


def _reselected(keys: JWKSCache, jwt: UnverifiedJWT, key: Key, exc: BearerError, now: float) -> Key:
    """The key the issuer now publishes under the token's `kid`; raises `exc` if it is `key`."""
    replacement = keys.reselect(jwt.kid, jwt.alg, key, now)
    if replacement is None:
        raise exc
    return replacement
