"""The health of a shared store (Redis): up or down, since when and why, retried after a pause.

A store that failed is not tried again for `retry_after` seconds: calls meanwhile fail at once
without I/O (a dead Redis costs requests nothing), the next one tries, and success marks it up.
Each change of state is logged once (WARNING when it goes down, INFO when it is back), however
many threads see it at once.
"""

from __future__ import annotations

import logging
import threading

from ._store import StoreError, StoreStatus
from ._types import Clock

logger = logging.getLogger("bearerguard.store")


class StoreHealth:
    """Up or down, since when, and why; a down store is retried after `retry_after` seconds.

    Reading the state costs one attribute read while up; changes take a lock, so each is
    logged once however many threads see it at once.
    """

    def __init__(self, where: str, retry_after: float, timer: Clock, clock: Clock) -> None:
        self.where = where
        self.retry_after = retry_after
        self.status = StoreStatus(up=True, since=clock())
        self._timer = timer
        self._clock = clock
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise `StoreError` without I/O while down and not yet due for a retry."""
        if self.status.up:
            return
        with self._lock:
            now = self._timer()
            if now < self._retry_at:
                raise StoreError(f"{self.where} is down: {self.status.last_error}")
            self._retry_at = now + self.retry_after  # this caller tries; the others wait

    def ok(self) -> None:
        if self.status.up:
            return
        with self._lock:
            if not self.status.up:
                self.status = StoreStatus(True, self._clock(), self.status.last_error)
                logger.info("%s is back up", self.where)

    def failed(self, exc: BaseException) -> StoreError:
        """Record a failure (logged if the store was up) and return the error to raise."""
        # The exception's type and text: redis-py's texts name the host and the failure, never
        # a password, and no command's arguments.
        error = type(exc).__name__ + (f": {exc}" if str(exc) else "")
        with self._lock:
            self._retry_at = self._timer() + self.retry_after
            if self.status.up:
                self.status = StoreStatus(False, self._clock(), error)
                logger.warning(
                    "%s is down (%s): caches go on without it, retried every %gs",
                    self.where,
                    error,
                    self.retry_after,
                )
            else:
                self.status = StoreStatus(False, self.status.since, error)
        return StoreError(f"{self.where}: {error}")
