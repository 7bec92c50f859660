"""The verified-token cache: a bounded map from a whole token to its verified result.

Reads take no lock (a dict lookup is atomic under the GIL, and entries are immutable); writes and
evictions take one. An entry is served only before its deadline (the token's `exp`, never later) and
only while the key that verified it is still published and fresh: a key that leaves the JWKS takes
its tokens with it. Eviction is oldest-first: tokens expire anyway, so recency buys little here and
an LRU would cost a lock on every hit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._token import AccessToken

if TYPE_CHECKING:
    from ._jwks import JWKSCache
    from ._keys import Key


@dataclass(slots=True)
class _Entry:
    # Never changed once built. Not frozen: a frozen dataclass's __init__ costs ~2.5 times more
    # on every miss; and not a named tuple, whose fields read slower on every hit.

    token: AccessToken
    deadline: float  # wall clock
    keys: JWKSCache | None  # None for a shared-secret issuer
    kid: str | None
    key: Key


class TokenCache:
    """Verified tokens, at most `maxsize`, each at most until its deadline."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float, monotonic_now: float) -> AccessToken | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if now < entry.deadline and (
            entry.keys is None or entry.keys.is_current(entry.kid, entry.key, monotonic_now)
        ):
            return entry.token
        with self._lock:
            if self._entries.get(token) is entry:
                del self._entries[token]
        return None

    def put(
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
        if self.maxsize <= 0 or deadline <= now:
            return
        with self._lock:
            if len(self._entries) >= self.maxsize:
                self._evict(now)
            self._entries[token] = _Entry(value, deadline, keys, kid, key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _evict(self, now: float) -> None:
        expired = [token for token, entry in self._entries.items() if entry.deadline <= now]
        for token in expired:
            del self._entries[token]
        # Then the oldest tenth, so that a full cache is not swept on every insert.
        excess = len(self._entries) - self.maxsize + max(1, self.maxsize // 10)
        for token in list(self._entries)[: max(0, excess)]:
            del self._entries[token]
