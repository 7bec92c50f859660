"""Bounded maps whose entries expire: the verified-token cache and the introspection cache.

Reads take no lock (a dict lookup is atomic under the GIL, and entries are immutable); writes and
evictions take one. An entry is served only before its deadline, never later. Eviction is
oldest-first: entries expire anyway, so recency buys little here and an LRU would cost a lock on
every hit. A verified token is also served only while the key that verified it is still published
and fresh: a key that leaves the JWKS takes its tokens with it.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

from ._token import AccessToken
from ._types import Clock

if TYPE_CHECKING:
    from ._jwks import JWKSCache
    from ._keys import Key

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """At most `maxsize` values, each served until its deadline (a time on the caller's clock)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._entries: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now < entry[1]:
            return entry[0]
        self.discard(key, entry[0])
        return None

    def put(self, key: K, value: V, *, deadline: float, now: float) -> None:
        if self.maxsize <= 0 or deadline <= now:
            return
        with self._lock:
            if key not in self._entries and len(self._entries) >= self.maxsize:
                self._evict(now)
            self._entries[key] = (value, deadline)

    def discard(self, key: K, value: V | None = None) -> None:
        """Forget `key` (only if it still holds `value`, when given)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (value is None or entry[0] is value):
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _evict(self, now: float) -> None:
        expired = [key for key, (_, deadline) in self._entries.items() if deadline <= now]
        for key in expired:
            del self._entries[key]
        # Then the oldest tenth, so that a full cache is not swept on every insert.
        excess = len(self._entries) - self.maxsize + max(1, self.maxsize // 10)
        for key in list(self._entries)[: max(0, excess)]:
            del self._entries[key]


# What the verified-token cache holds for a token: the result, and the JWKS and key that verified
# it (the JWKS is None for a shared secret). A plain tuple: built on every miss in one step, and
# unpacked on every hit faster than attributes are read.
_Verified = tuple["AccessToken", "JWKSCache | None", "str | None", "Key"]


class TokenCache(ExpiringCache[str, _Verified]):
    """Verified tokens by the whole token, at most `maxsize`, each at most until its deadline."""

    def get_token(self, token: str, clock: Clock, timer: Clock) -> AccessToken | None:
        """The token verified before, if within its deadline and its key is still published.

        Every request runs this, so it reads the entry itself rather than through
        `ExpiringCache.get` (the same rule), and reads the clocks (`clock` for the deadline,
        `timer` for the keys' freshness) only when there is an entry to judge.
        """
        entry = self._entries.get(token)
        if entry is None:
            return None
        verified, deadline = entry
        access, keys, kid, key = verified
        if clock() < deadline and (keys is None or keys.is_current(kid, key, timer())):
            return access
        self.discard(token, verified)
        return None

    def put_token(
        self,
        token: str,
        value: AccessToken,
        *,
        deadline: float,
        keys: JWKSCache | None,
        kid: str | None,
        key: Key,
        now: float,
    ) -> None:
        self.put(token, (value, keys, kid, key), deadline=deadline, now=now)
