"""Bounded maps whose entries expire: the verified-token cache and the introspection cache.

Reads take no lock (a dict lookup is atomic under the GIL, and entries are immutable); writes and
evictions take one. An entry is served only before its deadline, never later. A verified token is
also served only while the key that verified it is still published and fresh: a key that leaves
the JWKS takes its tokens with it.

Eviction is a segmented FIFO, so that a flood of tokens seen once (random strings, each
introspected and refused; or many fresh tokens) cannot push out the entries that are being used.
A new entry goes into a *probation* segment (whatever the main segment leaves free, at least a
tenth of the size); it moves to the *main* segment when it is hit there, and only then. Main
holds at most nine tenths, so a full cache always makes room in probation; main loses entries
only to entries promoted after them. A token used once is never promoted, so however fast such
tokens come they only churn probation. Each segment frees a tenth at once, expired entries
first, then the oldest, so that a full cache is not swept on every insert. A hit in main, the
common case, is the one dict lookup it always was, with no write and no lock; a miss costs a
second lookup, and the first hit in probation that lookup and the move, once per entry. (Chosen
over CLOCK or SIEVE, whose single queue a fast enough flood still sweeps, so that an entry
survives only if hit once per turnover; and over a frequency sketch, which costs hashing and a
write on every hit.)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable
from itertools import islice
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ._token import AccessToken
from ._types import Clock

if TYPE_CHECKING:
    from ._keys import Key

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
E = TypeVar("E")


class _Segments(Generic[K, E]):
    """The segmented FIFO of the module's docstring, over entries of any shape: a subclass says
    how to read an entry's deadline (`_expired`).

    Each segment keeps a lower bound of its entries' deadlines (lowered by each entry that comes
    in, recomputed by each scan), so that making room looks for expired entries only when one
    may be there: with tokens that live longer than the cache takes to turn over, a full cache
    evicts its oldest without reading every entry's deadline once per batch.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        # The share probation always keeps, and so the most the main segment may hold.
        self._probation_size = max(1, maxsize // 10)
        self._main_size = maxsize - self._probation_size
        self._entries: dict[K, E] = {}  # main: entries hit since they came in
        self._probation: dict[K, E] = {}  # new entries, not hit yet
        # No entry of a segment has a deadline before its bound: [probation, main].
        self._earliest = [math.inf, math.inf]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries) + len(self._probation)

    def _expired(self, segment: dict[K, E], now: float) -> tuple[list[K], float]:
        """The keys of `segment` whose deadline is `now` or earlier, and the earliest deadline
        of the others."""
        raise NotImplementedError

    def _make_room(self, main: bool, now: float) -> None:
        """Free a tenth of a segment: its expired entries, then as many of its oldest as needed.

        A batch, not one entry, so that a full cache is not swept on every insert (and dropping
        a dict's oldest key one at a time is quadratic: it scans its freed slots from the front).
        """
        segment = self._entries if main else self._probation
        batch = max(1, len(segment) // 10)
        expired: list[K] = []
        if self._earliest[main] <= now:  # else no entry of the segment has expired
            expired, self._earliest[main] = self._expired(segment, now)
        for key in expired:
            del segment[key]
        if live := list(islice(segment, max(0, batch - len(expired)))):
            self._evicting(segment, live)
            for key in live:
                del segment[key]

    def _evicting(self, segment: dict[K, E], keys: list[K]) -> None:
        """`keys` of `segment` are about to be evicted before their deadlines (a subclass that
        must know, `MemoryStore`'s map, says so here)."""

    def _promote(self, key: K, entry: E, deadline: float, now: float) -> None:
        if self._main_size <= 0:
            return  # too small for two segments: everything stays in probation
        with self._lock:
            if self._probation.get(key) is not entry:
                return  # replaced, discarded or promoted meanwhile
            if len(self._entries) >= self._main_size:
                self._make_room(True, now)
            self._earliest[True] = min(self._earliest[True], deadline)
            # Into main before out of probation: a lock-free reader looking in main and then
            # in probation may miss it for a moment (and verify again), never find it twice.
            self._entries[key] = entry
            del self._probation[key]

    def _insert(self, key: K, entry: E, deadline: float, now: float) -> None:
        entries, probation, earliest = self._entries, self._probation, self._earliest
        with self._lock:
            main = key in entries  # already promoted: a new answer keeps its place
            if not main and key not in probation and len(entries) + len(probation) >= self.maxsize:
                # Main never holds more than its share, so a full cache has probation at or
                # above its own: new entries make room among the new.
                self._make_room(False, now)
            (entries if main else probation)[key] = entry
            if deadline < earliest[main]:  # noqa: PLR1730 - cheaper than calling min()
                earliest[main] = deadline

    def _discard(self, key: K, holds: Callable[[E], bool] | None) -> None:
        """Forget `key` (only where its entry `holds` what the caller means, when given)."""
        with self._lock:
            for segment in (self._entries, self._probation):
                entry = segment.get(key)
                if entry is not None and (holds is None or holds(entry)):
                    del segment[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._probation.clear()
            self._earliest = [math.inf, math.inf]


class ExpiringCache(_Segments[K, tuple[V, float]]):
    """At most `maxsize` values, each served until its deadline (a time on the caller's clock)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        super().__init__(maxsize)

    def get(self, key: K, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return self._probation_hit(key, now)
        if now < entry[1]:
            return entry[0]
        self.discard(key, entry[0])
        return None

    def _probation_hit(self, key: K, now: float) -> V | None:
        """The value of `key` if probation holds it within its deadline, promoted to main."""
        entry = self._probation.get(key)
        if entry is None:
            return None
        if now < entry[1]:
            self._promote(key, entry, entry[1], now)
            return entry[0]
        self.discard(key, entry[0])
        return None

    def put(self, key: K, value: V, *, deadline: float, now: float) -> None:
        if self.maxsize > 0 and deadline > now:
            self._insert(key, (value, deadline), deadline, now)

    def discard(self, key: K, value: V | None = None) -> None:
        """Forget `key` (only if it still holds `value`, when given)."""
        self._discard(key, None if value is None else lambda entry: entry[0] is value)

    def _expired(self, segment: dict[K, tuple[V, float]], now: float) -> tuple[list[K], float]:
        expired, earliest = [], math.inf
        for key, (_, deadline) in segment.items():
            if deadline <= now:
                expired.append(key)
            elif deadline < earliest:
                earliest = deadline
        return expired, earliest


class KeySource(Protocol):
    """What the token cache asks of the keys that verified a token (`_jwks.JWKSCache`); a
    protocol, so that the cache does not import the key handling it sits below."""

    def is_current(self, kid: str | None, key: Key, now: float) -> bool: ...


class TokenCache(_Segments[str, AccessToken]):
    """Verified tokens by the whole token, at most `maxsize`, each at most until its deadline.

    An entry is the `AccessToken` itself: its deadline and the JWKS, kid and key that verified
    it are slots of the token (`_token._CacheSlots`), set before it is inserted and never after,
    so a cached token is one object for the garbage collector to track, beside its claims. So is
    its `_bound` mark (see `mark_bound`), set by the engine as it builds the token, cached or not.
    """

    def get_token(self, token: str, clock: Clock, timer: Clock) -> AccessToken | None:
        """The token verified before, if within its deadline and its key is still published.

        Every request runs this, so it reads the clocks (`clock` for the deadline, `timer`
        for the keys' freshness) only when there is an entry to judge.
        """
        access = self._entries.get(token)
        if access is None:
            if (access := self._probation.get(token)) is None:
                return None  # never seen: one more lookup, no call
            return self._probation_token(token, access, clock, timer)
        keys: KeySource | None = access._keys
        if clock() < access._deadline and (
            keys is None or keys.is_current(access._kid, access._key, timer())
        ):
            return access
        self.discard(token, access)
        return None

    def _probation_token(
        self, token: str, access: AccessToken, clock: Clock, timer: Clock
    ) -> AccessToken | None:
        """`get_token` for a token in probation: seen once so far. Promoted if still good."""
        keys: KeySource | None = access._keys
        now = clock()
        if now < access._deadline and (
            keys is None or keys.is_current(access._kid, access._key, timer())
        ):
            self._promote(token, access, access._deadline, now)
            return access
        self.discard(token, access)
        return None

    def put_token(
        self,
        token: str,
        value: AccessToken,
        *,
        deadline: float,
        keys: KeySource | None,
        kid: str | None,
        key: Key | None,
        now: float,
    ) -> None:
        """Keep `value`, a token just built by `issued` and not yet handed out to anyone."""
        if self.maxsize <= 0 or deadline <= now:
            return
        if deadline == value.expires_at:  # the usual deadline: one float object, not two
            deadline = value.expires_at
        _set_deadline(value, deadline)
        _set_keys(value, keys)
        _set_kid(value, kid)
        _set_key(value, key)
        self._insert(token, value, deadline, now)

    def discard(self, key: str, value: AccessToken | None = None) -> None:
        """Forget `key` (only if it still holds `value`, when given)."""
        self._discard(key, None if value is None else lambda entry: entry is value)

    def _expired(self, segment: dict[str, AccessToken], now: float) -> tuple[list[str], float]:
        expired, earliest = [], math.inf
        for key, access in segment.items():
            if (deadline := access._deadline) <= now:
                expired.append(key)
            elif deadline < earliest:
                earliest = deadline
        return expired, earliest


# The setters of the cache's slots of a token (a frozen dataclass's `__setattr__` refuses them).
_set_deadline, _set_keys, _set_kid, _set_key, _set_bound = (
    getattr(AccessToken, name).__set__ for name in ("_deadline", "_keys", "_kid", "_key", "_bound")
)


def mark_bound(access: AccessToken, bound: bool) -> AccessToken:
    """Mark a token just verified (before anyone else sees it, and before it is cached) as
    bound to its sender or not: `bound` says it has a `cnf` claim, read from what the token
    was built from (the JWT's decoded claims, the introspection answer). A cache hit reads the
    mark, never the claims: the header-only fast path serves no bound token, and the binding
    is checked on every request that presents one."""
    _set_bound(access, bound)
    return access
