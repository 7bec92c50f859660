"""Role-ID scopes (Jamf's `api-role:2`): privileges from a user callback, cached briefly.

A token names roles; what a role grants lives at the authorization server and can change at any
time, so the verified-token and introspection caches keep the token as issued and resolution
runs per request, from a per-role cache with a short TTL. A lookup that fails or times out is a
503: never a silent grant, never a 500, and never cached.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from datetime import timedelta
from typing import cast

from ._errors import ConfigurationError
from ._fetch import HTTP
from ._fleet import afleet_run, fleet_run
from ._redact import shown
from ._rolecalls import Lookup, LookupRunner, name_of
from ._rolelookup import HTTPRoleLookup
from ._rolestore import RoleStore
from ._singleflight import SingleFlight
from ._store import Store, StoreError
from ._token import AccessToken, with_scopes
from ._validate import seconds

logger = logging.getLogger("bearerguard.roles")

DEFAULT_ROLE_PATTERN = r"api-role:(?P<id>\d+)"


class RoleResolver:
    """Turns role references among a token's scopes into the privileges of those roles.

    A scope that fully matches `pattern` (its named group `id` is the role id) is replaced by
    what `lookup(role_id)` returns: an iterable of privilege names, empty for a role it does not
    know (which then grants nothing). The token's other scopes stay; the privileges of all its
    roles are added (roles are cumulative). The role reference itself is not kept as a scope
    (it grants nothing by itself); it is still in `token.claims`.

    `lookup` may be a plain function or a coroutine function. On the async path a plain one
    runs in this resolver's worker threads (so it never blocks the event loop); on the sync path
    a coroutine function runs on a private event loop in a worker thread, so give it clients it
    opens itself. Each lookup gets `timeout` seconds; a timeout or an exception is a 503.
    Answers are cached per role id for `ttl` seconds (at most `max_roles` roles);
    `invalidate()` forgets one role or all of them at once, and concurrent misses for one role
    make one call.

    `lookup` may also be an `HTTPRoleLookup` (a role endpoint over HTTP, Jamf Pro's for one):
    it then runs on the `ResourceServer`'s HTTP clients and timeout, with no worker thread.

    The cache is the server's store (a shared one, Redis, serves the fleet); `name` tells this
    resolver's roles apart there from another's: by default the `HTTPRoleLookup`'s URL, or the
    lookup function's module and name, the same in every replica of one application.
    `invalidate(role_id)` deletes the role from the store (every replica sees it, within the
    store's `local_ttl`); `invalidate()` without a role starts this process over with fresh
    keys (a store cannot list its keys), so other replicas keep theirs up to `ttl`.

    Configure one resolver per role namespace (a Jamf server) on its `Issuer(roles=...)` or
    `Introspection(roles=...)`: role ids of two servers are not the same roles.

    Example::

        def privileges(role_id: str) -> list[str]:
            return jamf.get(f"/api/v1/api-roles/{role_id}").json()["privileges"]

        Issuer(issuer="https://acme.jamfcloud.com", audience=client_ids,
               roles=RoleResolver(privileges))
    """

    def __init__(
        self,
        lookup: Lookup,
        *,
        pattern: str = DEFAULT_ROLE_PATTERN,
        ttl: float | timedelta = 30.0,
        timeout: float | timedelta = 5.0,
        max_roles: int = 1000,
        workers: int = 4,
        name: str | None = None,
    ) -> None:
        if not isinstance(lookup, HTTPRoleLookup) and not callable(lookup):
            raise ConfigurationError("the role lookup must be callable", field="roles")
        self.pattern = re.compile(pattern)
        if "id" not in self.pattern.groupindex:
            raise ConfigurationError(
                f"role pattern {pattern!r} needs a named group 'id'", field="roles"
            )
        self.ttl = cast(float, seconds(ttl, "ttl"))
        self.timeout = cast(float, seconds(timeout, "timeout"))
        if max_roles < 1 or workers < 1:
            raise ConfigurationError("max_roles and workers must be at least 1", field="roles")
        self._runner = LookupRunner(lookup, self.timeout, workers)
        self.max_roles = max_roles
        self.name = name if name is not None else name_of(lookup)
        self._roles = RoleStore(self.name, self.ttl, max_roles)  # the server's store, by role
        self._flights: SingleFlight[tuple[str, int], frozenset[str]] = SingleFlight()
        self._generation = 0  # bumped by invalidate(): a flight that started before never lands
        # A token's scopes split into role ids and the rest: tokens repeat, and a frozenset
        # caches its hash, so a request pays one dict lookup here.
        self._split = functools.lru_cache(maxsize=1024)(self._split_scopes)

    def _split_scopes(self, scopes: frozenset[str]) -> tuple[tuple[str, ...], frozenset[str]]:
        matches = {s: self.pattern.fullmatch(s) for s in scopes}
        ids = tuple(sorted({m["id"] for m in matches.values() if m}))
        return ids, frozenset(s for s, m in matches.items() if not m)

    def use_http(self, http: HTTP) -> None:
        """Run an `HTTPRoleLookup` on these clients (the first server configured with it)."""
        self._runner.use_http(http)

    def use_store(self, store: Store) -> None:
        """Cache privileges in `store` (the first server configured with this resolver)."""
        self._roles.use(store)

    def invalidate(self, role_id: str | None = None) -> None:
        """Forget one role's privileges (or every role's): the next request looks them up."""
        self._generation += 1
        if role_id is None:
            self._roles.forget_all()
            return
        try:
            self._roles.forget(role_id)
        except StoreError:  # a store that is down holds nothing we read meanwhile
            logger.warning(
                "role %s: the store is down; other replicas may keep the role until its TTL",
                shown(role_id),
            )

    # -- the twins: the server calls these with every token of the issuer ---------------------

    def resolve(self, token: AccessToken, now: float) -> AccessToken:
        """`token` with its roles replaced by their privileges (sync twin)."""
        return self.counted(token, now)[0]

    async def aresolve(self, token: AccessToken, now: float) -> AccessToken:
        """`token` with its roles replaced by their privileges (async twin)."""
        return (await self.acounted(token, now))[0]

    def role_ids(self, token: AccessToken) -> tuple[str, ...]:
        """The role ids among `token`'s scopes, sorted."""
        return self._split(token.scopes)[0]

    def counted(self, token: AccessToken, now: float) -> tuple[AccessToken, int, int]:
        """`resolve`, and how many role ids the token names and how many were not cached."""
        role_ids, rest = self._split(token.scopes)
        if not role_ids:
            return token, 0, 0
        found, missed = [], 0
        for role_id in role_ids:
            privileges = self._roles.get(role_id)
            if privileges is None:  # (an empty set is a role that grants nothing: a hit)
                missed += 1
                privileges = self._privileges(role_id, now)
            found.append(privileges)
        return with_scopes(token, rest.union(*found)), len(role_ids), missed

    async def acounted(self, token: AccessToken, now: float) -> tuple[AccessToken, int, int]:
        """The async twin of `counted`."""
        role_ids, rest = self._split(token.scopes)
        if not role_ids:
            return token, 0, 0
        cached = [await self._roles.aget(role_id) for role_id in role_ids]
        missed = sum(c is None for c in cached)
        if not missed:  # no task for a cache hit
            return with_scopes(token, rest.union(*cached)), len(role_ids), 0  # type: ignore[arg-type]
        # Every lookup lands before the request is answered, so none outlives a refusal.
        found = await asyncio.gather(
            *(
                self._aprivileges(r, now)
                for r, c in zip(role_ids, cached, strict=True)
                if c is None
            ),
            return_exceptions=True,
        )
        privileges = [c for c in cached if c is not None]
        for answer in found:
            if isinstance(answer, BaseException):
                raise answer
            privileges.append(answer)
        return with_scopes(token, rest.union(*privileges)), len(role_ids), missed

    def _privileges(self, role_id: str, now: float) -> frozenset[str]:
        if (hit := self._roles.get(role_id)) is not None:
            return hit
        generation = self._generation

        def flight() -> frozenset[str]:  # one per role in this process; in the fleet, if shared
            if (hit := self._roles.get(role_id)) is not None:
                return hit
            if not self._roles.shared:
                return call()
            return fleet_run(
                self._roles.cache(),
                self._roles.key(role_id),
                cached=lambda: self._roles.get(role_id),
                compute=call,
                hold=self.timeout + 1.0,
                wait=self.timeout + 1.0,
            )

        def call() -> frozenset[str]:
            privileges = self._runner.checked(role_id, self._runner.call(role_id, now))
            if generation == self._generation:  # else invalidated meanwhile: serve, do not keep
                self._roles.put(role_id, privileges)
            return privileges

        return self._flights.run((role_id, generation), flight)

    async def _aprivileges(self, role_id: str, now: float) -> frozenset[str]:
        if (hit := await self._roles.aget(role_id)) is not None:
            return hit
        generation = self._generation

        async def flight() -> frozenset[str]:
            if (hit := await self._roles.aget(role_id)) is not None:
                return hit
            if not self._roles.shared:
                return await call()
            return await afleet_run(
                self._roles.cache(),
                self._roles.key(role_id),
                cached=lambda: self._roles.aget(role_id),
                compute=call,
                hold=self.timeout + 1.0,
                wait=self.timeout + 1.0,
            )

        async def call() -> frozenset[str]:
            privileges = self._runner.checked(role_id, await self._runner.acall(role_id, now))
            if generation == self._generation:  # else invalidated meanwhile: serve, do not keep
                await self._roles.aput(role_id, privileges)
            return privileges

        return await self._flights.arun((role_id, generation), flight)

    def close(self) -> None:
        """Stop the worker threads (a lookup still running is not interrupted), and close the
        HTTP clients of an `HTTPRoleLookup` if the resolver made them itself."""
        self._runner.close()
