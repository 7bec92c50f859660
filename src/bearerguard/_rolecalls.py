"""Running a `RoleResolver`'s lookup: a plain function, a coroutine function or an HTTP endpoint.

On the async path a plain function runs in the resolver's worker threads (it never blocks the
event loop); on the sync path a coroutine function runs on a private event loop in a worker
thread. An `HTTPRoleLookup` runs on the server's HTTP clients and timeout, with no worker thread.
Whatever the lookup returns is checked here: privileges are strings, anything else, a timeout or
an exception is a 503 (`UpstreamUnavailableError`), logged with the exception's type only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import cast

from ._errors import UpstreamUnavailableError
from ._fetch import HTTP
from ._logfields import fields
from ._redact import clip, safe_url, shown
from ._rolelookup import HTTPRoleLookup
from ._singleflight import SingleFlight

logger = logging.getLogger("bearerguard.roles")

Lookup = Callable[[str], Iterable[str]] | Callable[[str], Awaitable[Iterable[str]]] | HTTPRoleLookup
Answer = Iterable[str] | BaseException


class LookupRunner:
    """Calls one lookup within `timeout` seconds, sync or async; `checked` reads its answer."""

    def __init__(self, lookup: Lookup, timeout: float, workers: int) -> None:
        self.lookup = lookup
        self.http_lookup = lookup if isinstance(lookup, HTTPRoleLookup) else None
        self.timeout = timeout
        self._is_async = inspect.iscoroutinefunction(lookup)  # decided once, here
        self._http: HTTP | None = None  # the server's, handed over by `use_http`
        self._owns_http = False
        self._sign_ins: SingleFlight[str, str] = SingleFlight()  # an HTTPRoleLookup's token
        self._workers = workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def use_http(self, http: HTTP) -> None:
        if self._http is None:
            self._http = http

    def call(self, role_id: str, now: float) -> Answer:
        """The lookup's answer for `role_id` (sync twin), or the exception it ended with."""
        if self.http_lookup is not None:  # the server's client has its own timeouts
            try:
                return self._http_privileges(self.http_lookup, role_id, now)
            except UpstreamUnavailableError as exc:
                return exc
        future = self._executor().submit(self._call_in_thread, role_id)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return TimeoutError()

    async def acall(self, role_id: str, now: float) -> Answer:
        """The lookup's answer for `role_id` (async twin)."""
        pending: Awaitable[Iterable[str]]
        try:
            if self.http_lookup is not None:
                pending = self._ahttp_privileges(self.http_lookup, role_id, now)
            elif self._is_async:
                coroutine = cast(Callable[[str], Awaitable[Iterable[str]]], self.lookup)
                pending = coroutine(role_id)
            else:  # a plain function must not block the event loop
                loop = asyncio.get_running_loop()
                plain = cast(Callable[[str], Iterable[str]], self.lookup)
                pending = loop.run_in_executor(self._executor(), plain, role_id)
            return await asyncio.wait_for(pending, self.timeout)
        except Exception as exc:  # TimeoutError included
            return exc

    def _own_http(self) -> HTTP:
        if self._http is None:  # a resolver used without a server: clients of its own
            self._http, self._owns_http = HTTP(), True
        return self._http

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

    def _call_in_thread(self, role_id: str) -> Iterable[str] | BaseException:
        try:
            if self._is_async:
                coroutine = cast(Callable[[str], Awaitable[Iterable[str]]], self.lookup)
                return asyncio.run(_awaited(coroutine(role_id)))
            return cast(Callable[[str], Iterable[str]], self.lookup)(role_id)
        except Exception as exc:
            return exc

    def checked(self, role_id: str, answer: Answer) -> frozenset[str]:
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
        """Stop the worker threads, and close HTTP clients made here."""
        if self._owns_http and self._http is not None:
            self._http.close()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


def name_of(lookup: object) -> str:
    """A resolver's default name in store keys: the same in every process of one application."""
    if isinstance(lookup, HTTPRoleLookup):
        return safe_url(lookup.url)
    module = getattr(lookup, "__module__", None) or type(lookup).__module__
    qualname = getattr(lookup, "__qualname__", None) or type(lookup).__qualname__
    return f"{module}.{qualname}"


async def _awaited(pending: Awaitable[Iterable[str]]) -> Iterable[str]:
    return await pending
