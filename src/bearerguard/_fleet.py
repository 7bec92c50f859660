"""Fleet-wide single flight: N replicas missing one entry at once make about one upstream call.

Over any `Store` (`_store`): the first replica takes a short lock and computes (its caller caches
the result); the others poll the cache until the value appears, the lock goes, or a bounded wait
passes, and then compute themselves. The rationale is below.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

from ._store import LOCK, Store, StoreError
from ._types import Clock

V = TypeVar("V")

# -- fleet-wide single flight ------------------------------------------------------------------
#
# N replicas missing the same entry at once should make about one upstream call. The first takes
# a short lock in the store and computes (and its caller caches the result); the others poll the
# cache until the value appears, the lock goes (its holder failed, or died and the lock expired),
# or `wait` passes, and then compute themselves. Polling rather than pub/sub: a waiter needs no
# connection of its own, cannot miss a message published just before it subscribed, and the
# case that matters most (a holder that died) sends no message anyway, so the bound is needed
# either way; at a 20 ms interval a waiter costs a handful of GETs for an introspection of
# ~100 ms. A store that is down gives no lock and no wait: everyone computes (the process's own
# `SingleFlight` still makes that one call per process).

POLL_INTERVAL = 0.02


def fleet_run(
    store: Store,
    key: str,
    *,
    cached: Callable[[], V | None],
    compute: Callable[[], V],
    hold: float,
    wait: float,
    poll: float = POLL_INTERVAL,
    timer: Clock = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> V:
    """`compute()` unless another replica already does so for `key`; then its cached result.

    `hold` is the lock's TTL (longer than a computation takes: the upstream deadline); a waiter
    waits at most `wait` seconds (and never past the lock's expiry) before computing itself.
    `cached()` reads the cache the computation fills, and must not raise.
    """
    lock_key = LOCK + key
    try:
        token = store.lock(lock_key, hold)
    except StoreError:
        return compute()
    if token is not None:
        try:
            # Another replica's flight may have landed between the caller's read and this lock.
            return value if (value := cached()) is not None else compute()
        finally:
            _quietly(store.unlock, lock_key, token)
    deadline = timer() + wait
    while timer() < deadline:
        sleep(poll)
        if (value := cached()) is not None:
            return value
        if not _held(store, lock_key):
            break
    # The holder may have stored its result and let go since the last read.
    return value if (value := cached()) is not None else compute()


async def afleet_run(
    store: Store,
    key: str,
    *,
    cached: Callable[[], Awaitable[V | None]],
    compute: Callable[[], Awaitable[V]],
    hold: float,
    wait: float,
    poll: float = POLL_INTERVAL,
    timer: Clock = time.monotonic,
) -> V:
    """The async twin of `fleet_run`."""
    lock_key = LOCK + key
    try:
        token = await store.alock(lock_key, hold)
    except StoreError:
        return await compute()
    if token is not None:
        try:
            return value if (value := await cached()) is not None else await compute()
        finally:
            with suppress(StoreError):  # it expires after `hold`
                await store.aunlock(lock_key, token)
    deadline = timer() + wait
    while timer() < deadline:
        await asyncio.sleep(poll)
        if (value := await cached()) is not None:
            return value
        try:
            if await store.aget(lock_key) is None:
                break
        except StoreError:
            break
    return value if (value := await cached()) is not None else await compute()


def _held(store: Store, lock_key: str) -> bool:
    try:
        return store.get(lock_key) is not None
    except StoreError:
        return False


def _quietly(unlock: Callable[[str, str], None], key: str, token: str) -> None:
    with suppress(StoreError):  # it expires after `hold`
        unlock(key, token)
