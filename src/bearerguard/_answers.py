"""Introspection answers in a store, and the call that fills it: the I/O around `Introspector.flow`.

`Introspector.flow` decides (discovery, the POST, what the answer means) and never caches; this
module reads the store before it and writes the store after it, for both twins:

    cached answer or refusal?  -> served (a refusal raised)
    else, one call per token in this process (`SingleFlight`), and with a shared store one in
    the fleet (`fleet_run`: the others read what it stores), within the bound on calls
    (`CallLimit`) -> the answer is stored until its `exp` (at most `cache_max_ttl`), a refusal
    for `negative_ttl`; each call is reported (`IntrospectionCalled`).

Store keys are `intro:` (answers) and `neg:` (refusals), then a digest of what shapes an answer
(the AS, our client, the audience and claim settings: two servers that would judge an answer
differently never read each other's), then the token's SHA-256: never the token. A store error
is a miss and nothing is written (`_store`'s rule): the AS is asked, as without a store.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from typing import TYPE_CHECKING

from ._codec import decode_entry, encode
from ._errors import InvalidTokenError
from ._store import MemoryStore, Store, StoreError
from ._token import AccessToken
from ._types import Clock

if TYPE_CHECKING:  # the server imports it: no import level spent here
    from ._config_introspection import Introspection

# What a lookup finds: the answer or the refusal (to raise), and the time it is good until.
Found = tuple[AccessToken | InvalidTokenError, float]
# A fleet-wide lock outlives a call by this much, and a waiter waits for at most one call.
_DEFAULT_CALL = 10.0


def _scope(config: Introspection, confirms_jwts: bool) -> str:
    shaping = (
        config.endpoint,
        config.issuer,
        config.client_id,
        config.audience if isinstance(config.audience, str | None) else tuple(config.audience),
        tuple(config.scope_claims),
        tuple(config.client_id_claims),
        config.leeway,
        confirms_jwts,
    )
    return hashlib.sha256(repr(shaping).encode()).hexdigest()[:16]


class Answers:
    """The introspection cache of one `Introspector`, in a store (module docs).

    Without a store of the server's, answers and refusals each get a `MemoryStore` of
    `cache_size` entries, so that refusals (a flood of random tokens) never take the place of
    an accepted token; `cache_size=0` caches nothing, in any store.
    """

    def __init__(
        self,
        config: Introspection,
        *,
        confirms_jwts: bool = False,
        store: Store | None = None,
        timer: Clock = time.monotonic,
    ) -> None:
        self.enabled = config.cache_size > 0
        self.shared = store is not None and not isinstance(store, MemoryStore)
        if store is None:
            size = max(1, config.cache_size)
            self.answers: Store = MemoryStore(size, timer=timer)
            self.refusals: Store = MemoryStore(size, timer=timer)
        else:
            self.answers = self.refusals = store
        self._scope = _scope(config, confirms_jwts)
        self._max_ttl: float = config.cache_max_ttl  # type: ignore[assignment]  # float after init
        self._negative_ttl: float = config.negative_ttl  # type: ignore[assignment]

    def key(self, key: bytes) -> str:
        """The part of the store keys after the kind (also the fleet lock's)."""
        return f"intro:{self._scope}:{key.hex()}"

    def get(self, key: bytes, now: float) -> Found | None:
        """The stored answer or refusal for a token key (sync twin); None on a miss or an outage."""
        if not self.enabled:
            return None
        name = self.key(key)
        try:
            found = _read(self.answers.get(name), now)
            return found if found is not None else _read(self.refusals.get("neg" + name[5:]), now)
        except StoreError:
            return None

    async def aget(self, key: bytes, now: float) -> Found | None:
        if not self.enabled:
            return None
        name = self.key(key)
        try:
            found = _read(await self.answers.aget(name), now)
            if found is not None:
                return found
            return _read(await self.refusals.aget("neg" + name[5:]), now)
        except StoreError:
            return None

    def _entry(
        self, key: bytes, result: AccessToken | InvalidTokenError, now: float
    ) -> tuple[Store, str, bytes, float, float] | None:
        name = self.key(key)
        if isinstance(result, AccessToken):
            exp = math.inf if result.expires_at is None else result.expires_at
            store, until = self.answers, min(exp, now + self._max_ttl)
        else:
            store, until, name = self.refusals, now + self._negative_ttl, "neg" + name[5:]
        if not self.enabled or not until > now:
            return None
        try:
            value = (
                (result.reason, result.seen) if isinstance(result, InvalidTokenError) else result
            )
            return store, name, encode(value, until), until - now, until
        except ValueError:  # a value the codec cannot carry: served, not cached
            return None

    def put(self, key: bytes, result: AccessToken | InvalidTokenError, now: float) -> Found:
        """Store what the AS answered (sync twin); returns it with the time it is good until."""
        entry = self._entry(key, result, now)
        if entry is None:
            return result, now
        store, name, data, ttl, until = entry
        with contextlib.suppress(StoreError):  # not written: the next request asks again
            store.set(name, data, ttl)
        return result, until

    async def aput(self, key: bytes, result: AccessToken | InvalidTokenError, now: float) -> Found:
        entry = self._entry(key, result, now)
        if entry is None:
            return result, now
        store, name, data, ttl, until = entry
        with contextlib.suppress(StoreError):
            await store.aset(name, data, ttl)
        return result, until


def _read(data: bytes | None, now: float) -> Found | None:
    entry = None if data is None else decode_entry(data, now)
    if entry is None:
        return None
    value, until = entry
    if isinstance(value, AccessToken):
        return value, until
    if isinstance(value, tuple):
        refused = InvalidTokenError(value[0])
        refused.seen = value[1]
        return refused, until
    return None  # another kind of value under this key: not an answer


def answer(found: Found) -> tuple[AccessToken, float]:
    """The token and the time it is good until; a refusal raised."""
    result, until = found
    if isinstance(result, InvalidTokenError):
        raise result
    return result, until
