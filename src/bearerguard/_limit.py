"""A bound on the calls made to one upstream: so many at once, so many a second.

The authorization server is protected from us: a flood of tokens never seen before (random
strings cost an attacker nothing) must not become a flood of introspection calls, nor take every
connection of the HTTP pool. Above the bound a call is not made and not queued: the request gets
a 503 with `Retry-After` at once (no request waits longer than one upstream deadline), while
cached answers keep being served. The rate is a token bucket that holds one second's worth of
calls, so a burst of up to `per_second` new tokens passes at once.

Sans I/O: the caller holds a slot around the call (`with limit.slot(): ...`), as it holds a lock
around a key fetch; acquiring never blocks, so the same bound serves threads and asyncio tasks.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ._errors import UpstreamUnavailableError
from ._types import Clock

logger = logging.getLogger("bearerguard.introspection")


class CallLimit:
    """At most `concurrent` calls in flight and `per_second` calls a second, on `timer`."""

    def __init__(self, what: str, *, concurrent: int, per_second: float, timer: Clock) -> None:
        self.what = what
        self.concurrent = concurrent
        self.per_second = per_second
        self._timer = timer
        self._burst = max(1.0, per_second)
        self._tokens = self._burst
        self._filled_at = timer()
        self._in_flight = 0
        self._refusing = False  # logged once when refusals start, not once per refusal
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one call's place; `UpstreamUnavailableError` (503, Retry-After) if none is free."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        with self._lock:
            now = self._timer()
            self._tokens = min(
                self._burst, self._tokens + (now - self._filled_at) * self.per_second
            )
            self._filled_at = now
            if self._in_flight >= self.concurrent:
                wait, bound = 1.0, f"max_concurrent_calls={self.concurrent}"
            elif self._tokens < 1.0:
                wait, bound = (
                    (1.0 - self._tokens) / self.per_second,
                    f"max_calls_per_second={self.per_second:g}",
                )
            else:
                self._tokens -= 1.0
                self._in_flight += 1
                self._refusing = False
                return
            starting, self._refusing = not self._refusing, True
        if starting:
            logger.warning(
                "%s: over %s; tokens not in the cache get 503 until calls are free",
                self.what,
                bound,
            )
        raise UpstreamUnavailableError(self.what, retry_after=max(1.0, math.ceil(wait)))

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
