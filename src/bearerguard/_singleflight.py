"""One computation in flight per key, for threads and for asyncio tasks.

Concurrent callers that miss a cache for the same key share one call to the slow source (an
introspection endpoint, a role resolver): the first caller computes, the others wait for its
result or its exception. Nothing is remembered once the call ends; caching is the caller's job,
and the computation should check the cache again first, since a caller may arrive just after the
previous flight landed. Threads and each event loop have separate flights.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Call(Generic[V]):
    __slots__ = ("callers", "done", "error", "value")

    def __init__(self) -> None:
        self.callers = 0
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None

    def wait(self, timeout: float | None) -> V:
        if not self.done.wait(timeout):
            raise TimeoutError("the computation in flight did not end in time")
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set before done when error is None


class SingleFlight(Generic[K, V]):
    """`run(key, compute)` from threads, `await arun(key, compute)` from asyncio tasks.

    Example::

        flights: SingleFlight[str, Roles] = SingleFlight()
        roles = flights.run(role_id, lambda: resolve(role_id))  # 50 threads: one resolve()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[K, _Call[V]] = {}
        self._tasks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[K, asyncio.Future[V]]
        ] = weakref.WeakKeyDictionary()

    def run(self, key: K, compute: Callable[[], V], *, wait: float | None = None) -> V:
        """Call `compute()` unless a thread already does so for `key`; share its outcome.

        A thread that joins a flight waits for it at most `wait` seconds (None: until it ends),
        then gets `TimeoutError`; the flight goes on for the others.
        """
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
            call.callers += 1
        if not leader:
            try:
                return call.wait(wait)
            except TimeoutError:
                with self._lock:
                    call.callers -= 1
                raise
        try:
            call.value = compute()
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()
        return call.value

    def callers(self, key: K) -> int:
        """How many threads share the flight for `key` now (0 if none): for metrics and tests."""
        call = self._calls.get(key)
        return 0 if call is None else call.callers

    def ain_flight(self, key: K) -> bool:
        """Does a task of the running loop compute `key` now? (the async twin of `callers`)"""
        flights = self._tasks.get(asyncio.get_running_loop())
        return flights is not None and key in flights

    async def arun(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        """Await `compute()` unless a task of this loop already does so for `key`.

        The computation runs as its own task, so a caller that is cancelled does not cancel it
        for the others (and its result still reaches whatever cache it fills).
        """
        loop = asyncio.get_running_loop()
        with self._lock:  # the map of loops is shared between threads; each inner map is not
            flights = self._tasks.setdefault(loop, {})
        flight = flights.get(key)
        if flight is None:
            flight = flights[key] = asyncio.ensure_future(compute())
            flight.add_done_callback(partial(_land, flights, key))
        return await asyncio.shield(flight)


def _land(flights: dict[K, asyncio.Future[V]], key: K, flight: asyncio.Future[V]) -> None:
    if flights.get(key) is flight:
        del flights[key]
    if not flight.cancelled():
        flight.exception()  # retrieved here, so an unawaited failure is not logged as lost
