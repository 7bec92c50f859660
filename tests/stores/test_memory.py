"""MemoryStore, TieredStore and the fleet-wide single flight, on a fake timer (no Redis)."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bearerguard._fleet import afleet_run, fleet_run
from bearerguard._store import (
    MemoryStore,
    Store,
    StoreError,
    StoreStatus,
    TieredStore,
)


class Timer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky(MemoryStore):
    """A shared store that can be switched off (a fault the Redis tests produce for real)."""

    def __init__(self, timer: Timer) -> None:
        super().__init__(timer=timer)
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise StoreError("down")

    def get(self, key: str) -> bytes | None:
        self._check()
        return super().get(key)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._check()
        super().set(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        self._check()
        return super().add(key, value, ttl)

    def delete(self, key: str) -> None:
        self._check()
        super().delete(key)

    def status(self) -> StoreStatus:
        return StoreStatus(up=not self.down, since=0.0)


@pytest.fixture
def timer() -> Timer:
    return Timer()


def test_memory_store_is_a_store() -> None:
    assert isinstance(MemoryStore(), Store)


def test_entries_expire_on_the_timer(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    store.set("intro:a", b"1", 10)
    timer.now += 9.99
    assert store.get("intro:a") == b"1"
    timer.now += 0.01
    assert store.get("intro:a") is None


def test_set_replaces_delete_forgets_and_no_ttl_writes_nothing(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    store.set("intro:a", b"1", 10)
    store.set("intro:a", b"2", 10)
    assert store.get("intro:a") == b"2"
    store.delete("intro:a")
    assert store.get("intro:a") is None
    store.delete("intro:never")
    store.set("intro:b", b"1", 0)
    store.set("intro:c", b"1", -5)
    assert store.get("intro:b") is None
    assert store.get("intro:c") is None
    assert not store.add("jti:d", b"1", 0)
    assert store.get("jti:d") is None


def test_add_if_absent(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    assert store.add("jti:x", b"1", 5)
    assert not store.add("jti:x", b"2", 5)
    assert store.get("jti:x") == b"1"
    timer.now += 5
    assert store.add("jti:x", b"3", 5)  # expired: absent again


def test_add_is_atomic_under_threads() -> None:
    store = MemoryStore()
    barrier = threading.Barrier(20)
    wins: list[bool] = []

    def contend() -> None:
        barrier.wait()
        wins.append(store.add("jti:same", b"1", 60))

    threads = [threading.Thread(target=contend) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 19 + [True]


def test_bounded(timer: Timer) -> None:
    store = MemoryStore(100, timer=timer)
    for i in range(1000):
        store.set(f"intro:{i}", b"v", 60)
        assert len(store) <= 100
    assert store.get("intro:999") == b"v"  # the newest is kept
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(0)


def test_lock_and_unlock(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    token = store.lock("lock:a", 1.0)
    assert token is not None
    assert store.lock("lock:a", 1.0) is None
    store.unlock("lock:a", "not the token")
    assert store.lock("lock:a", 1.0) is None
    store.unlock("lock:a", token)
    again = store.lock("lock:a", 1.0)
    assert again is not None
    timer.now += 1.0  # expired, and taken by another: the old holder's unlock leaves it
    other = store.lock("lock:a", 1.0)
    assert other is not None
    store.unlock("lock:a", again)
    assert store.get("lock:a") == other.encode()


def test_async_twins(timer: Timer) -> None:
    store = MemoryStore(timer=timer)

    async def main() -> None:
        await store.aset("intro:a", b"1", 10)
        assert await store.aget("intro:a") == b"1"
        assert await store.aadd("jti:a", b"1", 10)
        assert not await store.aadd("jti:a", b"1", 10)
        await store.adelete("intro:a")
        assert await store.aget("intro:a") is None
        token = await store.alock("lock:a", 1)
        assert token is not None
        await store.aunlock("lock:a", token)
        assert await store.aget("lock:a") is None
        wins = await asyncio.gather(*(store.aadd("jti:b", b"1", 10) for _ in range(20)))
        assert sorted(wins) == [False] * 19 + [True]

    asyncio.run(main())
    assert store.status().up


# -- TieredStore -----------------------------------------------------------------------------


@pytest.fixture
def tiers(timer: Timer) -> tuple[TieredStore, MemoryStore, Flaky]:
    local, shared = MemoryStore(timer=timer), Flaky(timer)
    return TieredStore(local, shared, local_ttl=2.0), local, shared


def test_tiered_reads_local_first_and_fills_it_briefly(
    tiers: tuple[TieredStore, MemoryStore, Flaky], timer: Timer
) -> None:
    tiered, local, shared = tiers
    shared.set("role:1", b"p", 60)
    calls = shared.calls
    assert tiered.get("role:1") == b"p"
    assert local.get("role:1") == b"p"
    assert tiered.get("role:1") == b"p"
    assert shared.calls == calls + 1  # the second read stayed local
    shared.delete("role:1")  # another replica invalidates it: seen here within local_ttl
    timer.now += 2.0
    assert tiered.get("role:1") is None


def test_tiered_writes_both_local_for_at_most_local_ttl(
    tiers: tuple[TieredStore, MemoryStore, Flaky], timer: Timer
) -> None:
    tiered, local, shared = tiers
    tiered.set("intro:a", b"v", 30)
    assert shared.get("intro:a") == b"v"
    timer.now += 2.0
    assert local.get("intro:a") is None
    assert tiered.get("intro:a") == b"v"  # from shared again
    timer.now += 28.0
    assert tiered.get("intro:a") is None
    tiered.set("intro:b", b"v", 1.0)  # a TTL under local_ttl is kept locally no longer
    timer.now += 1.0
    assert local.get("intro:b") is None


def test_tiered_shared_down_get_and_set_go_on_locally(
    tiers: tuple[TieredStore, MemoryStore, Flaky],
) -> None:
    tiered, _local, shared = tiers
    shared.down = True
    assert not tiered.status().up
    assert tiered.get("intro:a") is None  # a miss, not an error
    tiered.set("intro:a", b"v", 30)
    assert tiered.get("intro:a") == b"v"  # local only
    shared.down = False
    assert tiered.status().up
    assert shared.get("intro:a") is None  # the write while down was not replayed


def test_tiered_shared_down_fleet_operations_raise(
    tiers: tuple[TieredStore, MemoryStore, Flaky],
) -> None:
    tiered, _local, shared = tiers
    shared.down = True
    with pytest.raises(StoreError):
        tiered.add("jti:a", b"1", 10)
    # recorded locally: a replay within this process is refused without the shared store
    assert not tiered.add("jti:a", b"1", 10)
    with pytest.raises(StoreError):
        tiered.delete("role:1")
    with pytest.raises(StoreError):
        tiered.lock("lock:a", 1)
    shared.down = False
    assert tiered.add("jti:b", b"1", 10)
    shared.add("jti:c", b"1", 10)  # seen by another replica
    assert not tiered.add("jti:c", b"1", 10)


def test_tiered_async_twins(tiers: tuple[TieredStore, MemoryStore, Flaky], timer: Timer) -> None:
    tiered, _local, shared = tiers

    async def main() -> None:
        await tiered.aset("intro:a", b"v", 30)
        timer.now += 2.0
        assert await tiered.aget("intro:a") == b"v"
        assert await tiered.aadd("jti:a", b"1", 10)
        assert not await tiered.aadd("jti:a", b"1", 10)
        token = await tiered.alock("lock:a", 1)
        assert token is not None
        await tiered.aunlock("lock:a", token)
        await tiered.adelete("intro:a")
        assert await tiered.aget("intro:a") is None
        shared.down = True
        assert await tiered.aget("intro:zz") is None
        await tiered.aset("intro:b", b"v", 30)
        assert await tiered.aget("intro:b") == b"v"
        with pytest.raises(StoreError):
            await tiered.aadd("jti:b", b"1", 10)

    asyncio.run(main())
    with pytest.raises(ValueError, match="local_ttl"):
        TieredStore(MemoryStore(), MemoryStore(), local_ttl=0)


# -- fleet_run over the in-memory store (threads as replicas) --------------------------------


def test_fleet_run_one_computes_the_others_read_its_result() -> None:
    store = MemoryStore()
    barrier = threading.Barrier(10)
    calls: list[int] = []
    results: list[str] = []

    def compute() -> str:
        calls.append(1)
        barrier_done.wait(2)  # everyone is waiting before the result lands
        store.set("intro:k", b"answer", 30)
        return "answer"

    barrier_done = threading.Event()

    def replica() -> None:
        barrier.wait()
        value = fleet_run(
            store,
            "intro:k",
            cached=lambda: v.decode() if (v := store.get("intro:k")) else None,
            compute=compute,
            hold=5,
            wait=5,
            poll=0.005,
        )
        results.append(value)

    threads = [threading.Thread(target=replica) for _ in range(10)]
    for thread in threads:
        thread.start()
    threading.Timer(0.1, barrier_done.set).start()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert results == ["answer"] * 10
    assert store.get("lock:intro:k") is None  # released


def test_fleet_run_holder_that_dies_holds_the_others_at_most_the_bound() -> None:
    store = MemoryStore()
    assert store.lock("lock:intro:k", 60) is not None  # a replica took it and died
    timer, slept = Timer(), []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        timer.now += seconds

    value = fleet_run(
        store,
        "intro:k",
        cached=lambda: None,
        compute=lambda: "mine",
        hold=5,
        wait=0.5,
        poll=0.1,
        timer=timer,
        sleep=sleep,
    )
    assert value == "mine"
    assert sum(slept) == pytest.approx(0.5)


def test_fleet_run_proceeds_when_the_lock_goes_without_a_result() -> None:
    timer = Timer()
    store = MemoryStore(timer=timer)
    assert store.lock("lock:intro:k", 0.25) is not None  # its holder failed; the lock expires

    def sleep(seconds: float) -> None:
        timer.now += seconds

    polls: list[int] = []

    def cached() -> str | None:
        polls.append(1)
        return None

    value = fleet_run(
        store,
        "intro:k",
        cached=cached,
        compute=lambda: "mine",
        hold=5,
        wait=10,
        poll=0.1,
        timer=timer,
        sleep=sleep,
    )
    assert value == "mine"
    assert len(polls) == 4  # 0.1, 0.2, 0.3: gone at 0.25, not the whole 10 s; one last read


def test_fleet_run_lock_winner_takes_a_result_that_landed_before_its_lock() -> None:
    # The caller read the cache, another replica stored its answer and let go, then this one
    # took the free lock: it must take that answer, not ask the AS again.
    store = MemoryStore(timer=Timer())
    computed: list[int] = []

    def mine() -> str:
        computed.append(1)
        return "mine"

    value = fleet_run(store, "intro:k", cached=lambda: "theirs", compute=mine, hold=5, wait=1)
    assert (value, computed) == ("theirs", [])


def test_fleet_run_waiter_reads_once_more_when_the_holder_lets_go() -> None:
    # Between a waiter's cache read and its look at the lock, the holder stores and lets go.
    timer = Timer()
    store = MemoryStore(timer=timer)
    holder = store.lock("lock:intro:k", 5)
    assert holder is not None
    landed: list[str] = []

    def cached() -> str | None:
        if landed:
            return landed[0]
        landed.append("theirs")  # stored just after this read ...
        store.unlock("lock:intro:k", holder)  # ... and the lock let go
        return None

    def sleep(seconds: float) -> None:
        timer.now += seconds

    computed: list[int] = []

    def mine() -> str:
        computed.append(1)
        return "mine"

    value = fleet_run(
        store, "intro:k", cached=cached, compute=mine,
        hold=5, wait=1, poll=0.1, timer=timer, sleep=sleep,
    )  # fmt: skip
    assert (value, computed) == ("theirs", [])


def test_afleet_run_lock_winner_and_waiter_take_a_result_that_landed() -> None:
    async def scenario() -> tuple[str, str, list[int]]:
        store = MemoryStore(timer=Timer())
        computed: list[int] = []

        async def theirs() -> str | None:
            return "theirs"

        async def mine() -> str:
            computed.append(1)
            return "mine"

        won = await afleet_run(store, "intro:k", cached=theirs, compute=mine, hold=5, wait=1)
        holder = store.lock("lock:intro:k", 5)
        assert holder is not None
        landed: list[str] = []

        async def racing() -> str | None:
            if landed:
                return landed[0]
            landed.append("theirs")
            store.unlock("lock:intro:k", holder)
            return None

        waited = await afleet_run(
            store, "intro:k", cached=racing, compute=mine, hold=5, wait=1, poll=0.01
        )
        return won, waited, computed

    assert asyncio.run(scenario()) == ("theirs", "theirs", [])


def test_fleet_run_behind_a_tiered_store_sees_a_released_lock_at_the_next_poll() -> None:
    # Locks are the whole fleet's (TieredStore.lock and unlock go to the shared tier), so a
    # lock read while held must not stay in the local tier: a waiter would believe it held for
    # local_ttl after its holder failed and released it.
    timer = Timer()
    shared = MemoryStore(timer=timer)
    tiered = TieredStore(MemoryStore(timer=timer), shared, local_ttl=2.0)
    holder = shared.lock("lock:intro:k", 5)  # another replica computes
    assert holder is not None
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        timer.now += seconds
        if len(polls) == 1:  # after the first poll saw it held: its holder fails, releases it
            shared.unlock("lock:intro:k", holder)

    def cached() -> str | None:
        polls.append(timer.now)
        return None

    value = fleet_run(
        tiered,
        "intro:k",
        cached=cached,
        compute=lambda: "mine",
        hold=5,
        wait=10,
        poll=0.1,
        timer=timer,
        sleep=sleep,
    )
    assert value == "mine"
    assert len(polls) == 3  # gone at the second poll (then one last read), not after local_ttl

    async def main() -> str:
        holder = shared.lock("lock:intro:a", 5)
        assert holder is not None
        assert await tiered.aget("lock:intro:a") is not None
        shared.unlock("lock:intro:a", holder)
        return "gone" if await tiered.aget("lock:intro:a") is None else "held"

    assert asyncio.run(main()) == "gone"


def test_fleet_run_store_down_computes_at_once(timer: Timer) -> None:
    shared = Flaky(timer)
    shared.down = True
    assert fleet_run(shared, "k:1", cached=lambda: None, compute=lambda: 7, hold=1, wait=1) == 7

    async def main() -> int:
        async def nothing() -> int | None:
            return None

        async def seven() -> int:
            return 7

        return await afleet_run(shared, "k:1", cached=nothing, compute=seven, hold=1, wait=1)

    assert asyncio.run(main()) == 7


def test_fleet_run_releases_the_lock_when_compute_fails() -> None:
    store = MemoryStore()

    def boom() -> str:
        raise RuntimeError("upstream")

    with pytest.raises(RuntimeError):
        fleet_run(store, "intro:k", cached=lambda: None, compute=boom, hold=5, wait=5)
    assert store.get("lock:intro:k") is None


def test_afleet_run_one_computes_among_tasks() -> None:
    store = MemoryStore()
    calls: list[int] = []

    async def main() -> list[str]:
        async def cached() -> str | None:
            value = await store.aget("intro:k")
            return None if value is None else value.decode()

        async def compute() -> str:
            calls.append(1)
            await asyncio.sleep(0.05)
            await store.aset("intro:k", b"answer", 30)
            return "answer"

        return await asyncio.gather(
            *(
                afleet_run(store, "intro:k", cached=cached, compute=compute, hold=5, wait=5,
                           poll=0.005)
                for _ in range(20)
            )
        )  # fmt: skip

    assert asyncio.run(main()) == ["answer"] * 20
    assert calls == [1]


def test_a_flood_of_never_again_keys_does_not_evict_entries_being_hit(timer: Timer) -> None:
    """MemoryStore evicts as `_cache.ExpiringCache` does (segmented FIFO): one policy."""
    store = MemoryStore(1000, timer=timer)
    hot = [f"intro:hot-{i}" for i in range(100)]
    for key in hot:
        store.set(key, b"v", 3600)
        assert store.get(key) == b"v"  # hit once: in use
    for i in range(20_000):
        store.set(f"neg:flood-{i}", b"x", 3600)
        if i % 1000 == 0:
            for key in hot[:10]:
                store.get(key)
    assert all(store.get(key) == b"v" for key in hot)


ops = st.lists(
    st.tuples(
        st.sampled_from(["get", "set", "add", "delete", "advance"]),
        st.sampled_from(["intro:a", "intro:b", "jti:c", "role:d"]),
        st.sampled_from([-1.0, 0.0, 0.5, 1.0, 3.0]),
    ),
    max_size=60,
)


@given(ops)
def test_memory_store_behaves_as_a_map_with_deadlines(steps: list[tuple[str, str, float]]) -> None:
    """Strict oracle: a dict of (value, deadline) on the same timer."""
    timer = Timer()
    store = MemoryStore(timer=timer)
    model: dict[str, tuple[bytes, float]] = {}

    def live(key: str) -> bytes | None:
        entry = model.get(key)
        return entry[0] if entry is not None and timer.now < entry[1] else None

    for i, (op, key, ttl) in enumerate(steps):
        value = str(i).encode()
        if op == "get":
            assert store.get(key) == live(key)
        elif op == "set":
            store.set(key, value, ttl)
            if ttl > 0:
                model[key] = (value, timer.now + ttl)
        elif op == "add":
            expected = ttl > 0 and live(key) is None
            assert store.add(key, value, ttl) is expected
            if expected:
                model[key] = (value, timer.now + ttl)
        elif op == "delete":
            store.delete(key)
            model.pop(key, None)
        else:
            timer.now += ttl if ttl > 0 else 0.25
    for key in ("intro:a", "intro:b", "jti:c", "role:d"):
        assert store.get(key) == live(key)


# --- add_unseen: a replay store that may evict never calls a replayed key new ---------------

replay_steps = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.sampled_from([5.0, 30.0, 66.0])),  # a fresh key, its TTL
        st.tuples(st.just("again"), st.floats(-0.5, 0.9)),  # a key seen, its deadline moved
        st.tuples(st.just("advance"), st.sampled_from([0.1, 1.0, 7.0, 40.0])),
    ),
    max_size=80,
)


@given(st.integers(1, 8), replay_steps, st.randoms(use_true_random=False))
@example(1, [("new", 5.0), ("new", 5.0), ("again", 0.0)], random.Random(0))  # evicted, asked
@example(2, [("new", 66.0)] * 3 + [("advance", 40.0), ("again", 0.9)], random.Random(0))
def test_add_unseen_never_calls_a_key_new_within_its_ttl(
    size: int, steps: list[tuple[str, float]], pick: Any
) -> None:
    """Strict oracle: every key ever added, with its deadline, kept forever. A key asked again
    within its TTL, with the deadline it had give or take a clock reading (a replayed proof's
    TTL is computed again from its `iat`), is never called new, however many keys the store
    has had to evict; a fresh key is called new unless the store has evicted a live entry."""
    timer = Timer()
    store = MemoryStore(size, timer=timer)
    seen: dict[str, float] = {}  # key -> its deadline, when it was called new
    for op, amount in steps:
        if op == "advance":
            timer.now += amount
            continue
        live = [key for key, deadline in seen.items() if deadline > timer.now]
        if op == "again" and live:
            key = pick.choice(live)
            answer = store.add_unseen(key, b"1", seen[key] + amount - timer.now)
            assert answer is not True, (key, answer)  # a replay is never new
            continue
        key = f"jti:{len(seen)}"
        answer = store.add_unseen(key, b"1", amount if op == "new" else 30.0)
        assert answer is not False  # never seen: not a replay
        if answer is None:  # only once the store has evicted an entry before its deadline
            assert store._entries.evicted_until["jti"] > timer.now
        else:
            seen[key] = timer.now + (amount if op == "new" else 30.0)


def test_add_unseen_refuses_what_it_may_have_forgotten_and_takes_later_keys(timer: Timer) -> None:
    store = MemoryStore(3, timer=timer)
    assert [store.add_unseen(f"jti:{i}", b"1", 60.0) for i in range(4)] == [True] * 4
    # jti:0 was evicted alive to make room for jti:3: absent, but not provably never added.
    assert store.get("jti:0") is None
    assert store.add_unseen("jti:0", b"1", 60.0) is None
    assert store.add_unseen("jti:new", b"1", 60.0) is None  # as old: it cannot tell either
    assert store.add_unseen("jti:3", b"1", 60.0) is False  # still held: a replay
    timer.now += 2.0  # past the slack: a key that outlives every evicted one is judged
    assert store.add_unseen("jti:later", b"1", 60.0) is True
    assert store.add_unseen("jti:later", b"1", 60.0) is False
    timer.now += 61.0  # every evicted entry has expired anyway: nothing is forgotten now
    assert store.add_unseen("jti:0", b"1", 60.0) is True


def test_an_expired_entry_swept_to_make_room_is_not_a_live_eviction(timer: Timer) -> None:
    store = MemoryStore(2, timer=timer)
    store.add_unseen("jti:a", b"1", 1.0)
    store.add_unseen("jti:b", b"1", 1.0)
    timer.now += 5.0
    assert store.add_unseen("jti:c", b"1", 60.0) is True  # a and b had expired: swept
    assert store._entries.evicted_until == {}


def test_a_local_replay_verdict_during_an_outage_refuses_what_the_tier_forgot(
    timer: Timer,
) -> None:
    """With `replay_outage="local"` and the shared store down, the local tier decides: a proof
    it may have forgotten (it evicted a live `jti` as old) is refused, not taken as new."""
    from bearerguard._dpop import DPoPPolicy, DPoPProof
    from bearerguard._errors import InvalidDPoPProofError, Reason
    from bearerguard._sender import SenderCheck

    shared = Flaky(timer)
    shared.down = True
    check = SenderCheck(
        DPoPPolicy(replay_outage="local"), TieredStore(MemoryStore(2, timer=timer), shared)
    )

    def proof(jti: str, iat: float) -> DPoPProof:
        return DPoPProof("jkt", jti, iat, iat + 60, "GET", "https://a.test/", None, None)  # type: ignore[arg-type]

    for jti in ("a", "b", "c"):  # the local tier holds two: "a" is evicted alive
        check.record(proof(jti, 1000.0), 1000.0)
    with pytest.raises(InvalidDPoPProofError) as forgotten:
        check.record(proof("a", 1000.0), 1000.0)
    assert forgotten.value.reason is Reason.DPOP_REPLAY_WINDOW
    with pytest.raises(InvalidDPoPProofError) as replayed:
        check.record(proof("c", 1000.0), 1000.0)
    assert replayed.value.reason is Reason.DPOP_REPLAYED
    timer.now += 2.0
    check.record(proof("d", 1002.0), 1002.0)  # outlives what was evicted: new


def test_long_lived_entries_of_another_kind_evicted_leave_jtis_judged(timer: Timer) -> None:
    """One store for introspection answers and DPoP `jti`s (`store=MemoryStore(...)`): answers
    kept for minutes, evicted alive by a flood, say nothing about `jti`s, which are judged as
    before; only a `jti` evicted alive makes the store unsure of `jti`s as old."""
    store = MemoryStore(4, timer=timer)
    for i in range(8):  # long-lived answers, evicted alive
        store.set(f"intro:{i}", b"answer", 600.0)
    assert store.add_unseen("jti:a", b"1", 66.0) is True
    assert store.add_unseen("jti:a", b"1", 66.0) is False
