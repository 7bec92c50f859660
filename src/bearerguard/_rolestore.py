"""Where a `RoleResolver` keeps the privileges it looked up: the server's `Store`, by role id.

Keys are `role:{resolver name}:{generation}:{role id}`: the same in every process of one
application, so replicas sharing a store share the privileges; `forget_all()` moves this process
to a fresh random generation (a shared store cannot list its keys), and the others keep theirs
until the TTL. Values are `_codec`'s, each with its own deadline. Every request that names a role
reads them, so a value read before is not parsed again: a store hands the same bytes object back,
whose hash Python keeps, and a hit costs a dict lookup rather than a JSON parse. A store error is
a miss and nothing is written (`_store`'s rule): the lookup is asked, as without a store.
"""

from __future__ import annotations

import contextlib
import secrets
import time

from ._codec import decode_entry, encode
from ._store import MemoryStore, Store, StoreError


class RoleStore:
    """The privileges of one resolver's roles, in a store (module docs)."""

    def __init__(self, name: str, ttl: float, max_roles: int) -> None:
        self.name = name
        self.ttl = ttl
        self.max_roles = max_roles
        self.store: Store | None = None  # the server's, handed over by `use`
        self.shared = False
        self._prefix = f"role:{name}:0:"
        self._decoded: dict[bytes, tuple[frozenset[str], float]] = {}

    def use(self, store: Store) -> None:
        """Keep privileges in `store` (the first server configured with the resolver)."""
        if self.store is None:
            self.store, self.shared = store, not isinstance(store, MemoryStore)

    def cache(self) -> Store:
        if self.store is None:  # a resolver used without a server: a store of its own
            self.use(MemoryStore(self.max_roles))
        return self.store  # type: ignore[return-value]

    def key(self, role_id: str) -> str:
        return self._prefix + role_id

    def get(self, role_id: str) -> frozenset[str] | None:
        """The cached privileges of `role_id` (an empty set grants nothing: still a hit)."""
        store = self.store if self.store is not None else self.cache()
        try:
            data = store.get(self._prefix + role_id)
        except StoreError:  # a miss: the lookup is asked, as without a store
            return None
        if data is None:
            return None
        known = self._decoded.get(data)  # the common case, inline: see `_read`
        if known is not None and time.time() < known[1]:
            return known[0]
        return self._read(data)

    async def aget(self, role_id: str) -> frozenset[str] | None:
        try:
            data = await self.cache().aget(self.key(role_id))
        except StoreError:
            return None
        return None if data is None else self._read(data)

    def _read(self, data: bytes) -> frozenset[str] | None:
        now = time.time()
        known = self._decoded.get(data)
        if known is None:
            entry = decode_entry(data, now)
            if entry is None or not isinstance(entry[0], frozenset):
                return None
            if len(self._decoded) >= self.max_roles:  # a memo: starting over loses nothing
                self._decoded.clear()
            known = self._decoded[data] = (entry[0], entry[1])
        return known[0] if now < known[1] else None

    def put(self, role_id: str, privileges: frozenset[str]) -> None:
        with contextlib.suppress(StoreError):  # not written: asked again next time
            self.cache().set(*self._entry(role_id, privileges))

    async def aput(self, role_id: str, privileges: frozenset[str]) -> None:
        with contextlib.suppress(StoreError):
            await self.cache().aset(*self._entry(role_id, privileges))

    def _entry(self, role_id: str, privileges: frozenset[str]) -> tuple[str, bytes, float]:
        """The store key, value and TTL of a role's privileges (until `ttl` on the wall clock)."""
        return self.key(role_id), encode(privileges, time.time() + self.ttl), self.ttl

    def forget(self, role_id: str) -> None:
        """Delete one role's privileges; raises `StoreError` if the store is down."""
        self.cache().delete(self.key(role_id))

    def forget_all(self) -> None:
        """Forget every role in this process: a fresh generation of keys."""
        self._prefix = f"role:{self.name}:{secrets.token_hex(4)}:"
