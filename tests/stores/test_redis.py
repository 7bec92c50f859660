"""RedisStore against a real redis-server on 127.0.0.1, faults through a relay we cut or pause."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar, cast

import pytest
import redis
import redis.asyncio as aredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bearerguard import AccessToken
from bearerguard._codec import decode_privileges, decode_token, encode
from bearerguard._errors import ConfigurationError
from bearerguard._fleet import afleet_run, fleet_run
from bearerguard._store import MemoryStore, Store, StoreError, TieredStore
from bearerguard.redis import RedisStore

from .conftest import SECRET, RedisServer, Relay

TOKEN = "opaque-token-text-that-must-never-be-a-key-0123456789"
T = TypeVar("T")


def run(store: RedisStore, call: Callable[[], Awaitable[T]]) -> T:
    """`asyncio.run` of an async twin, closing the client the store made for that loop."""

    async def main() -> T:
        try:
            return await call()
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_it_is_a_store(store: RedisStore) -> None:
    assert isinstance(store, Store)
    assert store.status().up


def test_get_set_add_delete(store: RedisStore, redis_db: redis.Redis) -> None:
    assert store.get("intro:a") is None
    store.set("intro:a", b"value", 30)
    assert store.get("intro:a") == b"value"
    assert store.add("jti:x", b"1", 30)
    assert not store.add("jti:x", b"2", 30)
    assert store.get("jti:x") == b"1"
    store.delete("intro:a")
    assert store.get("intro:a") is None
    store.set("intro:b", b"v", 0)  # no TTL: nothing written
    assert not store.add("jti:y", b"1", -1)
    assert redis_db.dbsize() == 1


def test_expiry_is_the_ttl_capped_by_max_ttl(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    store = RedisStore(redis_server.url, secret=SECRET, timeout=2, max_ttl=60)
    store.set("intro:a", b"v", 30.5)
    store.set("intro:b", b"v", 3600)
    assert 30_000 < redis_db.pttl(store.name("intro:a")) <= 30_500
    assert 59_000 < redis_db.pttl(store.name("intro:b")) <= 60_000
    store.set("intro:c", b"v", 0.15)
    assert store.get("intro:c") == b"v"
    time.sleep(0.2)
    assert store.get("intro:c") is None
    store.close()


def test_keys_are_namespaced_versioned_and_never_hold_the_token(
    store: RedisStore, redis_db: redis.Redis
) -> None:
    token = AccessToken("https://as", "svc", "c1", frozenset({"read"}), {"k": TOKEN}, None)
    store.set(f"intro:{TOKEN}", encode(token, time.time() + 60), 30)
    store.set(f"neg:{TOKEN}x", b"r", 30)
    assert store.add(f"jti:{TOKEN}", b"1", 30)
    assert store.lock(f"lock:intro:{TOKEN}", 5) is not None
    keys = sorted(k.decode() for k in cast(list[bytes], redis_db.keys("*")))
    assert len(keys) == 4
    for key in keys:
        assert TOKEN not in key
        assert "opaque" not in key
        namespace, version, kind, digest = key.split(":")
        assert (namespace, version) == ("bearerguard", "v1")
        assert kind in {"intro", "neg", "jti", "lock"}
        assert len(digest) == 32
        int(digest, 16)
    assert decode_token(store.get(f"intro:{TOKEN}"), time.time()) == token
    other = RedisStore(store._url, secret="another secret, 16 bytes or more", namespace="b2")
    assert other.name(f"intro:{TOKEN}").startswith("b2:v1:intro:")
    assert other.name(f"intro:{TOKEN}").split(":")[3] != store.name(f"intro:{TOKEN}").split(":")[3]
    with pytest.raises(ValueError, match="kind"):
        store.name("no kind here")
    with pytest.raises(ValueError, match="kind"):
        store.name("Intro:x")
    other.close()


def test_configuration_is_checked(redis_server: RedisServer) -> None:
    with pytest.raises(ConfigurationError, match="16 bytes"):
        RedisStore(redis_server.url, secret="short")
    with pytest.raises(ConfigurationError, match="url"):
        RedisStore(secret=SECRET)
    with pytest.raises(ConfigurationError, match="namespace"):
        RedisStore(redis_server.url, secret=SECRET, namespace="a:b")
    with pytest.raises(ConfigurationError, match="timeout"):
        RedisStore(redis_server.url, secret=SECRET, timeout=0)
    with pytest.raises(ConfigurationError, match=r"not a Redis URL: http://…@h/") as caught:
        RedisStore("http://user:pw-secret@h/", secret=SECRET)
    assert "pw-secret" not in str(caught.value)
    with pytest.raises(ValueError, match="kind") as bad_key:
        RedisStore(redis_server.url, secret=SECRET).name(TOKEN)
    assert TOKEN not in str(bad_key.value)
    default = RedisStore(redis_server.url, secret=SECRET)
    assert default.timeout == 0.25
    assert default._client is not None
    kwargs = default._client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.25
    default.close()
    no_timeout = redis.Redis(port=redis_server.port, socket_timeout=None)
    with pytest.raises(ConfigurationError, match="socket_timeout"):
        RedisStore(client=no_timeout, secret=SECRET)
    no_timeout.close()


def test_given_clients(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    client = redis.Redis(port=redis_server.port, socket_timeout=0.5)
    store = RedisStore(client=client, secret=SECRET)
    store.set("role:1", b"p", 30)
    assert store.get("role:1") == b"p"

    async def main() -> bytes | None:
        aclient = aredis.Redis(port=redis_server.port)
        astore = RedisStore(client=client, async_client=aclient, secret=SECRET)
        try:
            return await astore.aget("role:1")
        finally:
            await aclient.aclose()

    assert asyncio.run(main()) == b"p"
    with pytest.raises(ConfigurationError, match="async client"):
        asyncio.run(store.aget("role:1"))
    client.close()


def test_async_twins(store: RedisStore) -> None:
    async def main() -> None:
        try:
            assert await store.aget("intro:a") is None
            await store.aset("intro:a", b"v", 30)
            assert await store.aget("intro:a") == b"v"
            assert store.get("intro:a") == b"v"  # one store, both twins
            assert await store.aadd("jti:a", b"1", 30)
            assert not await store.aadd("jti:a", b"1", 30)
            await store.adelete("intro:a")
            assert await store.aget("intro:a") is None
            token = await store.alock("lock:a", 5)
            assert token is not None
            assert await store.alock("lock:a", 5) is None
            await store.aunlock("lock:a", "another")
            assert await store.alock("lock:a", 5) is None
            await store.aunlock("lock:a", token)
            assert await store.alock("lock:a", 5) is not None
        finally:
            await store.aclose()

    asyncio.run(main())


def test_add_is_atomic_across_20_threads(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    stores = [
        RedisStore(redis_server.url, secret=SECRET, timeout=2) for _ in range(20)
    ]  # 20 "replicas"
    barrier = threading.Barrier(20)
    wins: list[bool] = []

    def contend(store: RedisStore) -> None:
        barrier.wait()
        wins.append(store.add("jti:same", b"1", 30))

    threads = [threading.Thread(target=contend, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 19 + [True]
    for store in stores:
        store.close()


def test_add_is_atomic_across_20_tasks(store: RedisStore) -> None:
    async def main() -> list[bool]:
        try:
            return await asyncio.gather(*(store.aadd("jti:same", b"1", 30) for _ in range(20)))
        finally:
            await store.aclose()

    assert sorted(asyncio.run(main())) == [False] * 19 + [True]


def test_unlock_only_deletes_its_own_lock(store: RedisStore, redis_db: redis.Redis) -> None:
    first = store.lock("lock:k", 0.1)
    assert first is not None
    time.sleep(0.15)  # expired; another takes it
    second = store.lock("lock:k", 5)
    assert second is not None
    store.unlock("lock:k", first)
    assert store.lock("lock:k", 5) is None
    store.unlock("lock:k", second)
    assert redis_db.dbsize() == 0


# -- bad data --------------------------------------------------------------------------------


def test_flushed_is_a_miss(store: RedisStore, redis_db: redis.Redis) -> None:
    store.set("intro:a", b"v", 30)
    token = store.lock("lock:a", 5)
    assert token is not None
    redis_db.flushall()
    assert store.get("intro:a") is None
    store.unlock("lock:a", token)  # the script is sent whole: a flushed script cache is fine
    assert store.status().up


def test_garbage_values_and_other_types_are_a_miss(
    store: RedisStore, redis_db: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store.set("intro:a", b"v", 30)
    name = store.name("intro:a")
    caplog.set_level(logging.WARNING, "bearerguard.store")
    stored = cast(bytes, redis_db.get(name))
    for garbage in (b"", b"x", b"\x00" * 16, b"\xff" * 100, stored[:-1] + b"w"):
        redis_db.set(name, garbage)
        assert store.get("intro:a") is None
    assert len(caplog.records) == 1  # logged once a minute at most, without the value
    assert "no valid tag" in caplog.text
    redis_db.delete(name)
    redis_db.rpush(name, b"a list")  # another data type under our name
    assert store.get("intro:a") is None
    redis_db.delete(name)
    redis_db.hset(name, "f", "v")
    assert run(store, lambda: store.aget("intro:a")) is None
    assert store.status().up


def test_a_value_moved_to_another_key_or_planted_is_a_miss(
    store: RedisStore, redis_db: redis.Redis
) -> None:
    forged = AccessToken("https://as", "admin", "c", frozenset({"admin"}), {}, None)
    store.set("intro:real", encode(forged, time.time() + 60), 30)
    redis_db.copy(store.name("intro:real"), store.name("intro:made-up-token"))
    assert store.get("intro:made-up-token") is None
    planted = encode(forged, time.time() + 60)
    redis_db.set(store.name("intro:another"), planted)  # no tag: a writer without the secret
    assert store.get("intro:another") is None
    other = RedisStore(store._url, secret="a different secret of 32 bytes!!")
    other.set("intro:x", b"v", 30)
    redis_db.copy(other.name("intro:x"), store.name("intro:x"))
    assert store.get("intro:x") is None
    other.close()


def test_an_old_format_version_is_a_miss(store: RedisStore, redis_db: redis.Redis) -> None:
    old = encode(frozenset({"read"}), time.time() + 60).replace(b"bg1", b"bg0", 1)
    store.set("role:1", old, 30)  # a replica of an older release wrote it, tag and all
    stored = store.get("role:1")
    assert stored is not None
    assert decode_privileges(stored, time.time()) is None
    back = decode_privileges(stored.replace(b"bg0", b"bg1", 1), time.time())
    assert back == frozenset({"read"})
    v0 = store.name("role:1").replace(":v1:", ":v0:")
    redis_db.set(v0, b"whatever an old release wrote")
    assert store.get("role:2") is None  # other keys are never read


# -- faults ----------------------------------------------------------------------------------


@pytest.fixture
def relayed(relay: Relay, redis_db: redis.Redis) -> Iterator[RedisStore]:
    store = RedisStore(relay.url, secret=SECRET, timeout=0.1, retry_after=0.3)
    yield store
    store.close()


def test_down_is_a_store_error_within_the_timeout_then_recovery(
    relayed: RedisStore, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "bearerguard.store")
    relayed.set("intro:a", b"v", 30)
    relay.cut()
    started = time.monotonic()
    with pytest.raises(StoreError):
        relayed.get("intro:a")
    assert time.monotonic() - started < 0.25
    status = relayed.status()
    assert not status.up
    assert status.last_error
    started = time.monotonic()
    for _ in range(100):  # while down: no I/O, no wait
        with pytest.raises(StoreError):
            relayed.get("intro:a")
    assert time.monotonic() - started < 0.05
    relay.resume()
    time.sleep(0.3)
    assert relayed.get("intro:a") == b"v"
    assert relayed.status().up
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "down" in caplog.records[0].getMessage()
    assert "back up" in caplog.records[1].getMessage()
    assert SECRET not in caplog.text


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_a_hanging_redis_is_a_store_error_within_the_timeout(
    relayed: RedisStore, relay: Relay, twin: str
) -> None:
    relayed.set("intro:a", b"v", 30)
    relay.pause()

    async def aget() -> bytes | None:
        try:
            return await relayed.aget("intro:a")
        finally:
            await relayed.aclose()

    started = time.monotonic()
    with pytest.raises(StoreError):
        relayed.get("intro:a") if twin == "sync" else asyncio.run(aget())
    assert time.monotonic() - started < 0.35  # 0.1 s for the reply (connect and reply if new)
    assert not relayed.status().up
    started = time.monotonic()
    for _ in range(10):  # remembered as down: no more waiting until retry_after
        with pytest.raises(StoreError):
            relayed.get("intro:a") if twin == "sync" else asyncio.run(aget())
    assert time.monotonic() - started < 0.1
    relay.resume()
    time.sleep(0.3)
    assert relayed.get("intro:a") == b"v"


def test_a_store_that_cannot_connect_fails_fast(redis_db: redis.Redis) -> None:
    from .conftest import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", secret=SECRET, timeout=0.1)
    started = time.monotonic()
    for call in (store.get, store.delete):
        with pytest.raises(StoreError):
            call("intro:a")
    with pytest.raises(StoreError):
        run(store, lambda: store.aadd("jti:a", b"1", 5))
    assert time.monotonic() - started < 0.5
    store.close()


def test_tiered_store_over_redis_survives_an_outage(relayed: RedisStore, relay: Relay) -> None:
    local = MemoryStore()
    tiered = TieredStore(local, relayed, local_ttl=0.2)
    tiered.set("intro:a", b"v", 30)
    time.sleep(0.2)
    assert local.get("intro:a") is None
    relay.cut()
    assert tiered.get("intro:a") is None  # a miss: the caller asks the AS
    assert not tiered.status().up
    tiered.set("intro:b", b"w", 30)
    assert tiered.get("intro:b") == b"w"  # local only
    with pytest.raises(StoreError):
        tiered.add("jti:a", b"1", 30)  # the replay rule: the caller fails closed
    relay.resume()
    time.sleep(0.35)
    assert tiered.get("intro:a") == b"v"
    assert tiered.status().up


# -- the fleet-wide single flight ------------------------------------------------------------


def test_fleet_run_across_replicas_makes_one_call(
    redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    replicas = [RedisStore(redis_server.url, secret=SECRET, timeout=2) for _ in range(8)]
    barrier = threading.Barrier(len(replicas))
    calls: list[int] = []
    results: list[bytes] = []

    def replica(store: RedisStore) -> None:
        def compute() -> bytes:
            calls.append(1)
            time.sleep(0.15)  # an introspection call
            store.set("intro:k", b"answer", 30)
            return b"answer"

        barrier.wait()
        results.append(
            fleet_run(
                store, "intro:k", cached=lambda: store.get("intro:k"), compute=compute,
                hold=2, wait=1,
            )
        )  # fmt: skip

    threads = [threading.Thread(target=replica, args=(s,)) for s in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert results == [b"answer"] * len(replicas)
    assert redis_db.keys("*lock*") == []
    for store in replicas:
        store.close()


def test_fleet_run_holder_dies_others_proceed_after_the_bound(store: RedisStore) -> None:
    assert store.lock("lock:intro:k", 30) is not None  # taken by a replica that died
    started = time.monotonic()
    value = fleet_run(
        store, "intro:k", cached=lambda: store.get("intro:k"), compute=lambda: b"mine",
        hold=2, wait=0.3,
    )  # fmt: skip
    waited = time.monotonic() - started
    assert value == b"mine"
    assert 0.3 <= waited < 0.6

    async def main() -> bytes:
        async def mine() -> bytes:
            return b"mine"

        try:
            return await afleet_run(
                store, "intro:k", cached=lambda: store.aget("intro:k"), compute=mine,
                hold=2, wait=0.3,
            )  # fmt: skip
        finally:
            await store.aclose()

    started = time.monotonic()
    assert asyncio.run(main()) == b"mine"
    assert 0.3 <= time.monotonic() - started < 0.6


def test_afleet_run_across_tasks_makes_one_call(store: RedisStore) -> None:
    calls: list[int] = []

    async def main() -> list[bytes]:
        async def compute() -> bytes:
            calls.append(1)
            await asyncio.sleep(0.1)
            await store.aset("intro:k", b"answer", 30)
            return b"answer"

        try:
            return await asyncio.gather(
                *(
                    afleet_run(store, "intro:k", cached=lambda: store.aget("intro:k"),
                               compute=compute, hold=2, wait=1)
                    for _ in range(20)
                )
            )  # fmt: skip
        finally:
            await store.aclose()

    assert asyncio.run(main()) == [b"answer"] * 20
    assert calls == [1]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=200), st.binary(max_size=200))
def test_any_key_and_any_stored_bytes(store: RedisStore, redis_db: redis.Redis, rest: str,
                                      raw: bytes) -> None:  # fmt: skip
    """Any key text is named without showing it; any bytes under that name read as a miss."""
    name = store.name("intro:" + rest)
    assert re.fullmatch(r"bearerguard:v1:intro:[0-9a-f]{32}", name)
    redis_db.set(name, raw)
    assert store.get("intro:" + rest) is None
    store.set("intro:" + rest, raw, 5)
    assert store.get("intro:" + rest) == raw
