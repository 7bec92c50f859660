"""Role-ID scopes (Jamf's `api-role:2`): privileges from a user callback, cached briefly.

A token names roles; what a role grants lives at the authorization server and can change at any
time, so the verified-token and introspection caches keep the token as issued and resolution
runs per request, from a per-role cache with a short TTL. A lookup that fails or times out is a
503: never a silent grant, never a 500, and never cached.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import logging
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import cast

from ._codec import decode_entry, encode
from ._config import seconds
from ._errors import ConfigurationError, UpstreamUnavailableError
from ._fetch import HTTP
from ._logfields import clip, fields, shown
from ._redact import safe_url
from ._rolelookup import HTTPRoleLookup
from ._singleflight import SingleFlight
from ._store import MemoryStore, Store, StoreError, afleet_run, fleet_run
from ._token import AccessToken, with_scopes

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
        self.max_roles = max_roles
        self.name = name if name is not None else _name_of(lookup)
        self._store: Store | None = None  # the server's, handed over by `use_store`
        self._shared = False
        # The same in every process, so replicas share keys; invalidate() picks a random one here.
        self._prefix = f"role:{self.name}:0:"
        # Stored values already decoded, by their bytes (see `_read`).
        self._decoded: dict[bytes, tuple[frozenset[str], float]] = {}
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

    def use_store(self, store: Store) -> None:
        """Cache privileges in `store` (the first server configured with this resolver)."""
        if self._store is None:
            self._store, self._shared = store, not isinstance(store, MemoryStore)

    def _cache(self) -> Store:
        if self._store is None:  # a resolver used without a server: a store of its own
            self.use_store(MemoryStore(self.max_roles))
        return self._store  # type: ignore[return-value]

    def _key(self, role_id: str) -> str:
        return self._prefix + role_id

    def _cached(self, role_id: str) -> frozenset[str] | None:
        store = self._store if self._store is not None else self._cache()
        try:
            data = store.get(self._prefix + role_id)
        except StoreError:  # a miss: the lookup is asked, as without a store
            return None
        if data is None:
            return None
        known = self._decoded.get(data)  # the common case, inline: see `_read`
        if known is not None and time.time() < known[1]:
            return known[0]
        return self._read(data)

    async def _acached(self, role_id: str) -> frozenset[str] | None:
        try:
            data = await self._cache().aget(self._key(role_id))
        except StoreError:
            return None
        return None if data is None else self._read(data)

    def _read(self, data: bytes) -> frozenset[str] | None:
        """The privileges `data` holds, if still good. Every request with a role reads them:
        a value read before is not parsed again (a store hands the same bytes object back, whose
        hash Python keeps), so a hit costs a dict lookup here rather than a JSON parse."""
        now = time.time()
        known = self._decoded.get(data)
        if known is None:
            entry = decode_entry(data, now)
            if entry is None or not isinstance(entry[0], frozenset):
                return None
            if len(self._decoded) >= self.max_roles:  # a memo: starting over loses nothing
                self._decoded.clear()
            known = self._decoded[data] = (entry[0], entry[1])
        return known[0] if now < known[1] else None

    def _own_http(self) -> HTTP:
        if self._http is None:  # a resolver used without a server: clients of its own
            self._http, self._owns_http = HTTP(), True
        return self._http

    def invalidate(self, role_id: str | None = None) -> None:
        """Forget one role's privileges (or every role's): the next request looks them up."""
        self._generation += 1
        if role_id is None:
            self._prefix = f"role:{self.name}:{secrets.token_hex(4)}:"
            return
        try:
            self._cache().delete(self._key(role_id))
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
            privileges = self._cached(role_id)
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
        cached = [await self._acached(role_id) for role_id in role_ids]
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
        if (hit := self._cached(role_id)) is not None:
            return hit
        generation = self._generation

        def flight() -> frozenset[str]:  # one per role in this process; in the fleet, if shared
            if (hit := self._cached(role_id)) is not None:
                return hit
            if not self._shared:
                return call()
            return fleet_run(
                self._cache(),
                self._key(role_id),
                cached=lambda: self._cached(role_id),
                compute=call,
                hold=self.timeout + 1.0,
                wait=self.timeout + 1.0,
            )

        def call() -> frozenset[str]:
            if self._http_lookup is not None:  # the server's client has its own timeouts
                answer: Iterable[str] | BaseException
                try:
                    answer = self._http_privileges(self._http_lookup, role_id, now)
                except UpstreamUnavailableError as exc:
                    answer = exc
                return self._store_answer(role_id, answer, generation, now)
            future = self._executor().submit(self._call_in_thread, role_id)
            try:
                answer = future.result(timeout=self.timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
                answer = TimeoutError()
            return self._store_answer(role_id, answer, generation, now)

        return self._flights.run((role_id, generation), flight)

    async def _aprivileges(self, role_id: str, now: float) -> frozenset[str]:
        if (hit := await self._acached(role_id)) is not None:
            return hit
        generation = self._generation

        async def flight() -> frozenset[str]:
            if (hit := await self._acached(role_id)) is not None:
                return hit
            if not self._shared:
                return await call()
            return await afleet_run(
                self._cache(),
                self._key(role_id),
                cached=lambda: self._acached(role_id),
                compute=call,
                hold=self.timeout + 1.0,
                wait=self.timeout + 1.0,
            )

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
            privileges = self._checked(role_id, answer)
            if generation == self._generation:  # else invalidated meanwhile: serve, do not keep
                with contextlib.suppress(StoreError):  # not written: asked again next time
                    await self._cache().aset(*self._entry(role_id, privileges))
            return privileges

        return await self._flights.arun((role_id, generation), flight)

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

    def _store_answer(
        self, role_id: str, answer: Iterable[str] | BaseException, generation: int, now: float
    ) -> frozenset[str]:
        """Check and cache a lookup's answer (sync twin); `UpstreamUnavailableError` if failed."""
        privileges = self._checked(role_id, answer)
        if generation == self._generation:  # else invalidated meanwhile: serve, do not keep
            with contextlib.suppress(StoreError):  # not written: asked again next time
                self._cache().set(*self._entry(role_id, privileges))
        return privileges

    def _entry(self, role_id: str, privileges: frozenset[str]) -> tuple[str, bytes, float]:
        """The store key, value and TTL of a role's privileges (until `ttl` on the wall clock)."""
        return self._key(role_id), encode(privileges, time.time() + self.ttl), self.ttl

    def _checked(self, role_id: str, answer: Iterable[str] | BaseException) -> frozenset[str]:
        """A lookup's answer as privileges; `UpstreamUnavailableError` for a failed one."""
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


def _name_of(lookup: object) -> str:
    """A resolver's default name in store keys: the same in every process of one application."""
    if isinstance(lookup, HTTPRoleLookup):
        return safe_url(lookup.url)
    module = getattr(lookup, "__module__", None) or type(lookup).__module__
    qualname = getattr(lookup, "__qualname__", None) or type(lookup).__qualname__
    return f"{module}.{qualname}"


async def _awaited(pending: Awaitable[Iterable[str]]) -> Iterable[str]:
    return await pending
