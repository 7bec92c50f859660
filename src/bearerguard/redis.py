"""A shared store on Redis, for fleets: `RedisStore` (needs `bearerguard[redis]`, redis-py).

One store serves every replica: introspection answers, role privileges, refusals and DPoP
`jti`s seen, and the fleet-wide single-flight locks (`_fleet.fleet_run`). Put it behind a
`TieredStore` so a hit costs no round trip.

What it guarantees (the README's "Stores" section says more):
- **Keys never contain a token, and cannot be forged**: `"intro:<id>"` is stored under
  `"{namespace}:v1:intro:<HMAC-SHA-256(secret, <id>), 32 hex digits>"`; without the secret one
  can neither tell whose entry it is nor compute where a chosen token would go.
- **Values cannot be forged either**: each carries a 128-bit HMAC tag over its key and bytes, so
  a planted or copied entry is a miss (logged at WARNING at most once a minute); otherwise a
  writable Redis would mint "active" answers. Hence the required secret (16 bytes at least).
- **"v1"** is the format of keys and values: two versions side by side never read each other's.
- **Expiry is Redis's** (`SET … PX`, `SET … NX PX`, atomic), at most the TTL asked and `max_ttl`.
- **Timeouts on every call** (`timeout`, 0.25 s, connect and read; no retries; async calls cut at
  `timeout`). Generous for a LAN round trip on purpose: an async call also counts the event
  loop's other work, and a timeout too tight marks a healthy Redis down exactly when the fleet
  is loaded, sending every replica to the AS at once. Any failure is `StoreError`.
- **Down is remembered** (`_storehealth`): no new attempt for `retry_after` (1 s), each change
  of state logged once, `status()` reports it. Garbage in Redis is a miss, never an exception.

Example::

    from bearerguard.redis import RedisStore
    shared = RedisStore("redis://redis.internal:6379/0", secret=os.environ["STORE_SECRET"])
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

try:
    import redis
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("bearerguard.redis needs redis-py: pip install 'bearerguard[redis]'") from exc

from ._errors import ConfigurationError
from ._redact import safe_url
from ._sealing import Sealer
from ._store import StoreStatus, lock_token
from ._storehealth import StoreHealth
from ._types import Clock

__all__ = ["RedisStore"]

logger = logging.getLogger("bearerguard.store")

T = TypeVar("T")

FORMAT = "v1"
DEFAULT_TIMEOUT = 0.25
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Delete the key only if it still holds the caller's lock token (a compare-and-delete: a GET and
# a DEL from the client would delete a lock that expired and was taken by another in between).
_UNLOCK = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


class RedisStore:
    """A `Store` on Redis: sync calls through a `redis.Redis`, async ones a `redis.asyncio.Redis`.

    Give a `url` (both clients are made from it, with this store's timeouts; the async one per
    event loop), or your own `client` and/or `async_client` (the sync one must have a
    `socket_timeout`; async calls are cut at `timeout` whatever the client). `secret` keys the
    names and tags every value (module docs); `namespace` starts every key name.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        secret: str | bytes,
        client: redis.Redis | None = None,
        async_client: aredis.Redis | None = None,
        namespace: str = "bearerguard",
        timeout: float = DEFAULT_TIMEOUT,
        retry_after: float = 1.0,
        max_ttl: float = 86_400.0,
        timer: Clock = time.monotonic,
        clock: Clock = time.time,
    ) -> None:
        if (url is None) == (client is None and async_client is None):
            raise ConfigurationError(
                "give RedisStore a url, or a client and/or an async_client", field="redis"
            )
        raw = secret.encode() if isinstance(secret, str) else secret
        if not isinstance(raw, bytes) or len(raw) < 16:
            raise ConfigurationError(
                "the Redis store secret must be at least 16 bytes", field="redis_secret"
            )
        if not _NAMESPACE.fullmatch(namespace):
            raise ConfigurationError(
                f"namespace {namespace!r} must be 1 to 64 of A-Z a-z 0-9 _ . -", field="redis"
            )
        if not 0 < timeout <= 5 or not retry_after >= 0 or not max_ttl > 0:
            raise ConfigurationError(
                "timeout must be in (0, 5] s, retry_after >= 0 and max_ttl > 0", field="redis"
            )
        if (
            client is not None
            and client.connection_pool.connection_kwargs.get("socket_timeout") is None
        ):
            raise ConfigurationError(
                "the given Redis client has no socket_timeout: a hung Redis would hang requests",
                field="redis",
            )
        self.namespace = namespace
        self.timeout = timeout
        self.max_ttl = max_ttl
        self._url = url
        self._options: dict[str, Any] = {  # no retries: a failed call fails, at once
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "health_check_interval": 0,
        }
        self._own = url is not None  # clients made here are closed here
        self._client = client
        if url is not None:
            try:
                self._client = redis.Redis.from_url(
                    url, retry=Retry(NoBackoff(), 0), **self._options
                )
            except ValueError:  # its text may hold the URL, and so a password
                raise ConfigurationError(
                    f"not a Redis URL: {safe_url(url)}", field="redis_url"
                ) from None
        self._async_client = async_client
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._clients_lock = threading.Lock()
        where = safe_url(url) if url is not None else _describe(client or async_client)
        self._health = StoreHealth(f"Redis store {where}", retry_after, timer, clock)
        self._sealer = Sealer(raw, f"{namespace}:{FORMAT}", self._health.where, timer)

    def name(self, key: str) -> str:
        """The Redis key name of a store key `"kind:rest"`: the kind in plain, `rest` keyed."""
        return self._sealer.name(key)

    def _px(self, ttl: float) -> int:
        return int(min(ttl, self.max_ttl) * 1000) if ttl > 0 else 0

    # -- the sync twins -----------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        name = self.name(key)
        return self._sealer.open(name, self._run(lambda c: _get(c, name)))

    def set(self, key: str, value: bytes, ttl: float) -> None:
        name, px = self.name(key), self._px(ttl)
        if px > 0:
            sealed = self._sealer.seal(name, value)
            self._run(lambda c: c.set(name, sealed, px=px))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        name, px = self.name(key), self._px(ttl)
        if px <= 0:
            return False
        sealed = self._sealer.seal(name, value)
        return bool(self._run(lambda c: c.set(name, sealed, px=px, nx=True)))

    def delete(self, key: str) -> None:
        name = self.name(key)
        self._run(lambda c: c.delete(name))

    def lock(self, key: str, ttl: float) -> str | None:
        token = lock_token()
        return token if self.add(key, token.encode(), ttl) else None

    def unlock(self, key: str, token: str) -> None:
        name = self.name(key)
        sealed = self._sealer.seal(name, token.encode())
        self._run(lambda c: c.eval(_UNLOCK, 1, name, sealed))

    def _run(self, call: Callable[[redis.Redis], T]) -> T:
        self._health.check()
        if self._client is None:
            raise ConfigurationError("this RedisStore has no sync client", field="redis")
        try:
            result = call(self._client)
        except Exception as exc:  # any failure of the client or the server: an outage
            raise self._health.failed(exc) from exc
        self._health.ok()
        return result

    # -- the async twins ----------------------------------------------------------------------

    async def aget(self, key: str) -> bytes | None:
        name = self.name(key)
        return self._sealer.open(name, await self._arun(lambda c: _aget(c, name)))

    async def aset(self, key: str, value: bytes, ttl: float) -> None:
        name, px = self.name(key), self._px(ttl)
        if px > 0:
            sealed = self._sealer.seal(name, value)
            await self._arun(lambda c: c.set(name, sealed, px=px))

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool:
        name, px = self.name(key), self._px(ttl)
        if px <= 0:
            return False
        sealed = self._sealer.seal(name, value)
        return bool(await self._arun(lambda c: c.set(name, sealed, px=px, nx=True)))

    async def adelete(self, key: str) -> None:
        name = self.name(key)
        await self._arun(lambda c: c.delete(name))

    async def alock(self, key: str, ttl: float) -> str | None:
        token = lock_token()
        return token if await self.aadd(key, token.encode(), ttl) else None

    async def aunlock(self, key: str, token: str) -> None:
        name = self.name(key)
        sealed = self._sealer.seal(name, token.encode())
        await self._arun(lambda c: c.eval(_UNLOCK, 1, name, sealed))

    async def _arun(self, call: Callable[[aredis.Redis], Awaitable[T]]) -> T:
        self._health.check()
        client = self._aclient()
        try:
            async with asyncio.timeout(self.timeout):
                result = await call(client)
        except Exception as exc:  # TimeoutError included
            raise self._health.failed(exc) from exc
        self._health.ok()
        return result

    def _aclient(self) -> aredis.Redis:
        if self._async_client is not None:
            return self._async_client
        if self._url is None:
            raise ConfigurationError("this RedisStore has no async client", field="redis")
        loop = asyncio.get_running_loop()  # an asyncio client belongs to one event loop
        with self._clients_lock:
            client = self._async_clients.get(loop)
            if client is None:
                client = self._async_clients[loop] = aredis.Redis.from_url(
                    self._url, retry=AsyncRetry(NoBackoff(), 0), **self._options
                )
        return client

    # -- state --------------------------------------------------------------------------------

    def status(self) -> StoreStatus:
        return self._health.status

    def close(self) -> None:
        """Close the sync client made from `url` (given clients are yours to close)."""
        if self._own and self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the async client this event loop made from `url`."""
        with self._clients_lock:
            client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def _get(client: redis.Redis, name: str) -> object:
    try:
        return client.get(name)
    except redis.ResponseError as exc:
        if str(exc).startswith("WRONGTYPE"):
            return None  # another data type under our name: not ours, a miss
        raise


async def _aget(client: aredis.Redis, name: str) -> object:
    try:
        return await client.get(name)
    except redis.ResponseError as exc:
        if str(exc).startswith("WRONGTYPE"):
            return None
        raise


def _describe(client: redis.Redis | aredis.Redis | None) -> str:
    kwargs = client.connection_pool.connection_kwargs if client is not None else {}
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
