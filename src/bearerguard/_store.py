"""The state seam: where caches and the DPoP replay check keep what outlives one request.

A store maps text keys to bytes that expire. The text before a key's first ":" is its *kind*
(`intro`, `neg`, `role`, `jti`, `lock`): a shared store puts it in plain sight in its key names, so
that an operator can count or drop one kind, and keys the rest (see `bearerguard.redis`). Values
are opaque bytes; `_codec` makes and reads them, and carries each value's own deadline, so an
entry is never believed past the token's `exp` or the configured TTL, whatever a store does.

Every operation has a sync and an async twin (`get`/`aget`, ...), as `SingleFlight.run`/`arun`.

`StoreError` is a store outage (unreachable, too slow, refused). The rule for callers:
- caches (introspection answers, role privileges, refusals) treat it as a miss and do not write:
  the authorization server is asked, as without a store, so an outage never accepts a token that
  would be refused without it, and never turns into a 500;
- the DPoP replay check fails closed by default (a proof whose `jti` cannot be recorded is
  refused with a 503), since accepting it would let a replay through on another replica.

`MemoryStore` is the in-process store (the default, and the local tier of `TieredStore`);
`TieredStore` puts one in front of a shared store (Redis) so a hit costs no round trip.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from ._cache import ExpiringCache
from ._types import Clock

logger = logging.getLogger("bearerguard.store")

V = TypeVar("V")


class StoreError(Exception):
    """The store could not answer (down, too slow, refused): the caller decides (module docs)."""


@dataclass(frozen=True)
class StoreStatus:
    """What a store reports of its health: for `status()` endpoints, metrics and tests.

    `since` is the wall-clock time of the last change of `up` (the store's creation if none);
    `last_error` names the last failure (an exception type and a safe text), or is None.
    """

    up: bool
    since: float
    last_error: str | None = None


@runtime_checkable
class Store(Protocol):
    """Bytes by text key, each until its TTL (seconds) runs out; sync and async twins.

    `add` is atomic add-if-absent: of callers adding one key at once, exactly one gets True.
    `lock` is `add` of a fresh random token, which it returns (None if the key is taken), and
    `unlock` deletes the key only if it still holds that token (a lock that expired and was
    taken by another caller is theirs). A TTL that is not positive writes nothing (`add` and
    `lock` then answer False and None). Any operation may raise `StoreError` (an outage), and
    nothing else for a well-formed key; a key without a kind is a programming error, which a
    shared store refuses with `ValueError`.
    """

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl: float) -> None: ...
    def add(self, key: str, value: bytes, ttl: float) -> bool: ...
    def delete(self, key: str) -> None: ...
    def lock(self, key: str, ttl: float) -> str | None: ...
    def unlock(self, key: str, token: str) -> None: ...
    async def aget(self, key: str) -> bytes | None: ...
    async def aset(self, key: str, value: bytes, ttl: float) -> None: ...
    async def aadd(self, key: str, value: bytes, ttl: float) -> bool: ...
    async def adelete(self, key: str) -> None: ...
    async def alock(self, key: str, ttl: float) -> str | None: ...
    async def aunlock(self, key: str, token: str) -> None: ...
    def status(self) -> StoreStatus: ...


def lock_token() -> str:
    """A lock holder's proof of ownership: 128 random bits."""
    return secrets.token_urlsafe(16)


LOCK = "lock:"  # the kind of the fleet-wide single flight's locks (`_fleet`)
_SLACK = 1.0  # seconds: how far two computations of one key's deadline may differ


class _Entries(ExpiringCache[str, bytes]):
    """A `MemoryStore`'s map, and by kind of key the latest deadline of an entry it evicted
    before that deadline: a key of that kind not outliving it may have been forgotten."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.evicted_until: dict[str, float] = {}

    def forgotten(self, key: str) -> float:
        return self.evicted_until.get(key.partition(":")[0], -math.inf)

    def _evicting(self, segment: dict[str, tuple[bytes, float]], keys: list[str]) -> None:
        until = self.evicted_until
        for key in keys:
            kind = key.partition(":")[0]
            until[kind] = max(until.get(kind, -math.inf), segment[key][1])


class MemoryStore:
    """The in-process store: at most `max_entries`, each until its TTL on `timer`.

    The entries live in the library's one bounded expiring map (`_cache.ExpiringCache`), so the
    store evicts as the verified-token and introspection caches do, and any better policy there
    (one that a flood of never-again keys cannot use to push out entries being hit) applies here
    at once. Reads take no lock; writes take one, which also makes `add` atomic. Nothing blocks
    for long, so the async twins run inline on the event loop. It is never down.

    A replay store gets more keys within one TTL than it holds when undersized: `add_unseen`,
    `add` for such keys (a DPoP proof's `jti`), refuses to call a key new when the store may
    have forgotten it. Size it for the proofs a process accepts within one proof lifetime.
    """

    def __init__(self, max_entries: int = 10_000, *, timer: Clock = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries = _Entries(max_entries)
        self._timer = timer
        self._lock = threading.Lock()
        self._status = StoreStatus(up=True, since=time.time())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        return self._entries.get(key, self._timer())

    def set(self, key: str, value: bytes, ttl: float) -> None:
        if not ttl > 0:
            return
        now = self._timer()
        with self._lock:  # serialised with `add`, so that add-if-absent stays atomic
            self._entries.put(key, value, deadline=now + ttl, now=now)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        return bool(self._add(key, value, ttl, unseen=False))

    def add_unseen(self, key: str, value: bytes, ttl: float) -> bool | None:
        """`add` for a key that must never be added twice within its TTL (a replay check): None,
        and nothing added, when the store cannot tell, since it evicted, before its deadline, an
        entry of the same kind that would have lived as long as this one (so an entry of this
        key, added as long ago, may have been evicted too). A key asked again computes its TTL
        from another clock reading: `_SLACK` seconds allow for that."""
        return self._add(key, value, ttl, unseen=True)

    def _add(self, key: str, value: bytes, ttl: float, *, unseen: bool) -> bool | None:
        if not ttl > 0:
            return False
        now = self._timer()
        with self._lock:
            if self._entries.get(key, now) is not None:
                return False
            if unseen and now + ttl <= self._entries.forgotten(key) + _SLACK:
                return None
            self._entries.put(key, value, deadline=now + ttl, now=now)  # evicts, then inserts
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.discard(key)

    def lock(self, key: str, ttl: float) -> str | None:
        token = lock_token()
        return token if self.add(key, token.encode(), ttl) else None

    def unlock(self, key: str, token: str) -> None:
        with self._lock:
            if self._entries.get(key, self._timer()) == token.encode():
                self._entries.discard(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def status(self) -> StoreStatus:
        return self._status

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        self.set(key, value, ttl)

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool:
        return self.add(key, value, ttl)

    async def adelete(self, key: str) -> None:
        self.delete(key)

    async def alock(self, key: str, ttl: float) -> str | None:
        return self.lock(key, ttl)

    async def aunlock(self, key: str, token: str) -> None:
        self.unlock(key, token)


class TieredStore:
    """A local `MemoryStore` in front of a shared store (Redis): hits stay in the process.

    Reads look in `local` first, then in `shared` (a value found there is kept locally for at
    most `local_ttl` seconds); writes go to both (locally for at most `local_ttl` too). So a
    change made by another replica (a role invalidated, an entry deleted) is seen here within
    `local_ttl`, and every value still carries its own deadline (`_codec`). A lock (a key of kind
    `lock`) is read from `shared` alone, where `lock` and `unlock` put it: a copy kept locally
    would show it held for `local_ttl` after its holder let it go.

    When `shared` fails, `get` and `set` go on with the local tier alone (a miss is a miss: the
    caller asks the authorization server); `add`, `delete`, `lock` and `unlock`, which mean
    nothing unless the whole fleet sees them, raise `StoreError` (`add` records the key locally
    first, so a replay within this process is still caught). `status()` is the shared store's:
    it logs its own changes of state and recovers by itself.
    """

    def __init__(self, local: MemoryStore, shared: Store, *, local_ttl: float = 2.0) -> None:
        if not local_ttl > 0:
            raise ValueError("local_ttl must be positive")
        self.local = local
        self.shared = shared
        self.local_ttl = local_ttl

    def get(self, key: str) -> bytes | None:
        fleet = key.startswith(LOCK)  # a lock is the fleet's: read where lock() put it
        value = None if fleet else self.local.get(key)
        if value is not None:
            return value
        try:
            value = self.shared.get(key)
        except StoreError:
            return None
        if value is not None and not fleet:
            self.local.set(key, value, self.local_ttl)
        return value

    async def aget(self, key: str) -> bytes | None:
        fleet = key.startswith(LOCK)
        value = None if fleet else self.local.get(key)
        if value is not None:
            return value
        try:
            value = await self.shared.aget(key)
        except StoreError:
            return None
        if value is not None and not fleet:
            self.local.set(key, value, self.local_ttl)
        return value

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.local.set(key, value, min(ttl, self.local_ttl))
        with suppress(StoreError):  # kept locally; the shared store's status says it is down
            self.shared.set(key, value, ttl)

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        self.local.set(key, value, min(ttl, self.local_ttl))
        with suppress(StoreError):
            await self.shared.aset(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        # Locally for the whole TTL: a replay within this process is caught without a round
        # trip, and even while the shared store is down.
        return self.local.add(key, value, ttl) and self.shared.add(key, value, ttl)

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool:
        return self.local.add(key, value, ttl) and await self.shared.aadd(key, value, ttl)

    def delete(self, key: str) -> None:
        self.local.delete(key)
        self.shared.delete(key)

    async def adelete(self, key: str) -> None:
        self.local.delete(key)
        await self.shared.adelete(key)

    def lock(self, key: str, ttl: float) -> str | None:
        return self.shared.lock(key, ttl)

    async def alock(self, key: str, ttl: float) -> str | None:
        return await self.shared.alock(key, ttl)

    def unlock(self, key: str, token: str) -> None:
        self.shared.unlock(key, token)

    async def aunlock(self, key: str, token: str) -> None:
        await self.shared.aunlock(key, token)

    def status(self) -> StoreStatus:
        return self.shared.status()
