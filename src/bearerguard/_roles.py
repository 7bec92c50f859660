"""Role-ID scopes (Jamf's `api-role:2`): privileges from a user callback, cached briefly.

A token names roles; what a role grants lives at the authorization server and can change at any
time, so the verified-token and introspection caches keep the token as issued and resolution
runs per request, from a per-role cache with a short TTL. A lookup that fails or times out is a
503: never a silent grant, never a 500, and never cached.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import cast

from ._cache import ExpiringCache
from ._errors import ConfigurationError, UpstreamUnavailableError
from ._fetch import HTTP
from ._logfields import clip, fields, shown
from ._rolelookup import HTTPRoleLookup
from ._singleflight import SingleFlight
from ._token import AccessToken, with_scopes
from ._validate import seconds

logger = logging.getLogger("bearerguard.roles")

DEFAULT_ROLE_PATTERN = r"api-role:(?P<id>\d+)"
Lookup = Callable[[str], Iterable[str]] | Callable[[str], Awaitable[Iterable[str]]] | HTTPRoleLookup


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
    ) -> None:
        self._http_lookup = lookup if isinstance(lookup, HTTPRoleLookup) else None
        self._http: HTTP | None = None  # the server's, handed over by `use_http`
        self._owns_http = False
        if self._http_lookup is None and not callable(lookup):
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
        self._lookup = lookup
        self._is_async = inspect.iscoroutinefunction(lookup)  # decided once, here
        self._cache: ExpiringCache[str, frozenset[str]] = ExpiringCache(max_roles)
        self._flights: SingleFlight[tuple[str, int], frozenset[str]] = SingleFlight()
        self._sign_ins: SingleFlight[str, str] = SingleFlight()  # an HTTPRoleLookup's token
        self._generation = 0  # bumped by invalidate(): a flight that started before never lands
        self._workers = workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # A token's scopes split into role ids and the rest: tokens repeat, and a frozenset
        # caches its hash, so a request pays one dict lookup here.
        self._split = functools.lru_cache(maxsize=1024)(self._split_scopes)

    def _split_scopes(self, scopes: frozenset[str]) -> tuple[tuple[str, ...], frozenset[str]]:
        matches = {s: self.pattern.fullmatch(s) for s in scopes}
        ids = tuple(sorted({m["id"] for m in matches.values() if m}))
        return ids, frozenset(s for s, m in matches.items() if not m)

    def use_http(self, http: HTTP) -> None:
        """Run an `HTTPRoleLookup` on these clients (the first server configured with it)."""
        if self._http is None:
            self._http = http

    def _own_http(self) -> HTTP:
        if self._http is None:  # a resolver used without a server: clients of its own
            self._http, self._owns_http = HTTP(), True
        return self._http

    def invalidate(self, role_id: str | None = None) -> None:
        """Forget one role's privileges (or every role's): the next request looks them up."""
        self._generation += 1
        if role_id is None:
            self._cache.clear()
        else:
            self._cache.discard(role_id)

    # -- the twins: the server calls these with every token of the issuer ---------------------

    def resolve(self, token: AccessToken, now: float) -> AccessToken:
        """`token` with its roles replaced by their privileges (sync twin)."""
        role_ids, rest = self._split(token.scopes)
        if not role_ids:
            return token
        found = [self._privileges(role_id, now) for role_id in role_ids]
        return with_scopes(token, rest.union(*found))

    async def aresolve(self, token: AccessToken, now: float) -> AccessToken:
        """`token` with its roles replaced by their privileges (async twin)."""
        role_ids, rest = self._split(token.scopes)
        if not role_ids:
            return token
        cached = [self._cache.get(role_id, now) for role_id in role_ids]
        if all(privileges is not None for privileges in cached):  # no task for a cache hit
            return with_scopes(token, rest.union(*cached))  # type: ignore[arg-type]
        # Every lookup lands before the request is answered, so none outlives a refusal.
        found = await asyncio.gather(
            *(self._aprivileges(r, now) for r in role_ids), return_exceptions=True
        )
        for answer in found:
            if isinstance(answer, BaseException):
                raise answer
        return with_scopes(token, rest.union(*found))  # type: ignore[arg-type]

    def _privileges(self, role_id: str, now: float) -> frozenset[str]:
        if (hit := self._cache.get(role_id, now)) is not None:
            return hit
        generation = self._generation

        def call() -> frozenset[str]:
            if self._http_lookup is not None:  # the server's client has its own timeouts
                answer: Iterable[str] | BaseException
                try:
                    answer = self._http_privileges(self._http_lookup, role_id, now)
                except UpstreamUnavailableError as exc:
                    answer = exc
                return self._store(role_id, answer, generation, now)
            future = self._executor().submit(self._call_in_thread, role_id)
            try:
                answer = future.result(timeout=self.timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
                answer = TimeoutError()
            return self._store(role_id, answer, generation, now)

        return self._flights.run((role_id, generation), call)

    async def _aprivileges(self, role_id: str, now: float) -> frozenset[str]:
        if (hit := self._cache.get(role_id, now)) is not None:
            return hit
        generation = self._generation

        async def call() -> frozenset[str]:
            answer: Iterable[str] | BaseException
            pending: Awaitable[Iterable[str]]
            try:
                if self._http_lookup is not None:
                    pending = self._ahttp_privileges(self._http_lookup, role_id, now)
                elif self._is_async:
                    coroutine = cast(Callable[[str], Awaitable[Iterable[str]]], self._lookup)
                    pending = coroutine(role_id)
                else:  # a plain function must not block the event loop
                    loop = asyncio.get_running_loop()
                    plain = cast(Callable[[str], Iterable[str]], self._lookup)
                    pending = loop.run_in_executor(self._executor(), plain, role_id)
                answer = await asyncio.wait_for(pending, self.timeout)
            except Exception as exc:  # TimeoutError included
                answer = exc
            return self._store(role_id, answer, generation, now)

        return await self._flights.arun((role_id, generation), call)

    def _http_privileges(self, lookup: HTTPRoleLookup, role_id: str, now: float) -> frozenset[str]:
        http = self._own_http()
        if lookup.needs_token(now):  # lookups of several roles at once sign in once
            self._sign_ins.run("token", lambda: http.run(lookup.sign_in(now)))
        return http.run(lookup.flow(role_id, now))

    async def _ahttp_privileges(
        self, lookup: HTTPRoleLookup, role_id: str, now: float
    ) -> frozenset[str]:
        http = self._own_http()
        if lookup.needs_token(now):
            await self._sign_ins.arun("token", lambda: http.arun(lookup.sign_in(now)))
        return await http.arun(lookup.flow(role_id, now))

    # -- shared by both -----------------------------------------------------------------------

    def _call_in_thread(self, role_id: str) -> Iterable[str] | BaseException:
        try:
            if self._is_async:
                coroutine = cast(Callable[[str], Awaitable[Iterable[str]]], self._lookup)
                return asyncio.run(_awaited(coroutine(role_id)))
            return cast(Callable[[str], Iterable[str]], self._lookup)(role_id)
        except Exception as exc:
            return exc

    def _store(
        self, role_id: str, answer: Iterable[str] | BaseException, generation: int, now: float
    ) -> frozenset[str]:
        """Check and cache a lookup's answer; `UpstreamUnavailableError` for a failed one."""
        privileges = None
        if not isinstance(answer, BaseException | str):  # a str is iterable, and wrong
            try:
                privileges = frozenset(answer)
            except TypeError as exc:
                answer = exc
        if privileges is None or not all(isinstance(p, str) for p in privileges):
            kind = "timed out" if isinstance(answer, TimeoutError) else "failed"
            # The exception type only: its text might carry what the lookup sent (a secret).
            logger.error(
                "role %s: the lookup %s (%s)",
                shown(role_id),
                kind,
                type(answer).__name__,
                extra=fields("roles_failed", role_id=clip(role_id), error=type(answer).__name__),
            )
            raise UpstreamUnavailableError(f"role {role_id}")
        if generation == self._generation:  # else invalidated meanwhile: serve, do not keep
            self._cache.put(role_id, privileges, deadline=now + self.ttl, now=now)
        return privileges

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self._workers, thread_name_prefix="bearerguard-roles"
                )
            return self._pool

    def close(self) -> None:
        """Stop the worker threads (a lookup still running is not interrupted), and close the
        HTTP clients of an `HTTPRoleLookup` if the resolver made them itself."""
        if self._owns_http and self._http is not None:
            self._http.close()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


async def _awaited(pending: Awaitable[Iterable[str]]) -> Iterable[str]:
    return await pending
