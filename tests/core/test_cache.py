"""ExpiringCache: bounded, never serves past a deadline, and a flood of one-use keys cannot push
out the entries that are being hit (the segmented FIFO of `_cache.py`)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from bearerguard._cache import ExpiringCache

NOW = 1_000.0

# One step: ("put", key, ttl), ("get", key, 0) or ("tick", 0, seconds).
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 40), st.floats(0.5, 30)),
        st.tuples(st.just("get"), st.integers(0, 40), st.just(0.0)),
        st.tuples(st.just("tick"), st.just(0), st.floats(0, 10)),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(maxsize=st.integers(0, 25), steps=_steps)
def test_cache_serves_only_the_last_value_within_its_deadline_and_stays_bounded(
    maxsize: int, steps: list[tuple[str, int, float]]
) -> None:
    # Oracle: the last value put for a key and its deadline. The cache may have forgotten it
    # (evicted), never served an older value, another key's value or one past its deadline.
    cache: ExpiringCache[int, object] = ExpiringCache(maxsize)
    last: dict[int, tuple[object, float]] = {}
    now = NOW
    for op, key, amount in steps:
        if op == "tick":
            now += amount
        elif op == "put":
            value = object()
            cache.put(key, value, deadline=now + amount, now=now)
            last[key] = (value, now + amount)
        else:
            got = cache.get(key, now)
            if got is not None:
                value, deadline = last[key]
                assert got is value and now < deadline
        assert len(cache) <= maxsize
        assert not set(cache._entries) & set(cache._probation)  # one segment per key


@settings(max_examples=50, deadline=None)
@given(
    maxsize=st.integers(20, 2_000),
    hot=st.integers(1, 50),
    flood=st.integers(0, 20_000),
)
def test_flood_of_one_use_keys_never_evicts_hit_entries(maxsize: int, hot: int, flood: int) -> None:
    hot = min(hot, maxsize * 9 // 10)  # what the main segment holds
    cache: ExpiringCache[str, int] = ExpiringCache(maxsize)
    for i in range(hot):
        cache.put(f"hot{i}", i, deadline=NOW + 60, now=NOW)
        assert cache.get(f"hot{i}", NOW) == i  # hit once: promoted
    for i in range(flood):
        cache.put(f"flood{i}", -1, deadline=NOW + 10, now=NOW)
        assert len(cache) <= maxsize
    assert [cache.get(f"hot{i}", NOW) for i in range(hot)] == list(range(hot))


def test_hit_entries_stay_while_a_flood_passes_and_new_ones_still_get_in() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(1_000)
    for i in range(100):
        cache.put(f"hot{i}", i, deadline=NOW + 60, now=NOW)
    for i in range(12_000):  # the hot entries are hit now and then during the flood
        cache.put(f"flood{i}", -1, deadline=NOW + 10, now=NOW)
        if i % 3_000 == 0:
            assert all(cache.get(f"hot{j}", NOW) == j for j in range(100))
    assert all(cache.get(f"hot{j}", NOW) == j for j in range(100))
    cache.put("new", 7, deadline=NOW + 60, now=NOW)  # a newcomer used twice is kept too
    assert cache.get("new", NOW) == 7
    for i in range(5_000):
        cache.put(f"later{i}", -1, deadline=NOW + 10, now=NOW)
    assert cache.get("new", NOW) == 7


def test_main_segment_is_oldest_first_among_hit_entries() -> None:
    cache: ExpiringCache[int, int] = ExpiringCache(10)  # main holds 9
    for i in range(12):
        cache.put(i, i, deadline=NOW + 60, now=NOW)
        assert cache.get(i, NOW) == i
    assert len(cache) <= 10
    assert cache.get(11, NOW) == 11 and cache.get(0, NOW) is None


def test_expired_entries_go_before_live_ones() -> None:
    cache: ExpiringCache[int, int] = ExpiringCache(20)
    for i in range(10):
        cache.put(i, i, deadline=NOW + 60, now=NOW)
    for i in range(10, 20):
        cache.put(i, i, deadline=NOW + 1, now=NOW)
    later = NOW + 2
    for i in range(20, 30):
        cache.put(i, i, deadline=later + 60, now=later)
    assert all(cache.get(i, later) == i for i in (*range(10), *range(20, 30)))


def test_discard_and_clear_reach_both_segments() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(10)
    cache.put("main", 1, deadline=NOW + 60, now=NOW)
    cache.get("main", NOW)
    cache.put("new", 2, deadline=NOW + 60, now=NOW)
    cache.discard("main", 5)  # another value: kept
    assert cache.get("main", NOW) == 1
    cache.discard("main")
    cache.discard("new", 2)
    assert (cache.get("main", NOW), cache.get("new", NOW), len(cache)) == (None, None, 0)
    cache.put("a", 1, deadline=NOW + 60, now=NOW)
    cache.get("a", NOW)
    cache.put("b", 1, deadline=NOW + 60, now=NOW)
    cache.clear()
    assert len(cache) == 0


class _Scanning(ExpiringCache[int, object]):
    """The cache as it was before the segments kept a bound of their deadlines: every batch
    of evictions reads every deadline of its segment."""

    def _make_room(self, main: bool, now: float) -> None:
        self._earliest = [-math.inf, -math.inf]
        super()._make_room(main, now)


# Whole seconds: entries then expire, and batches find them, in most runs.
_timed_steps = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 40), st.integers(1, 30).map(float)),
        st.tuples(st.just("get"), st.integers(0, 40), st.just(0.0)),
        st.tuples(st.just("tick"), st.just(0), st.integers(0, 10).map(float)),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(maxsize=st.integers(1, 25), steps=_timed_steps)
def test_the_deadline_bound_evicts_exactly_what_a_full_scan_evicts(
    maxsize: int, steps: list[tuple[str, int, float]]
) -> None:
    # Differential oracle: skipping the scan when the bound says nothing expired must change
    # nothing, so the two caches hold the same keys, in the same order, after every step.
    bounded: ExpiringCache[int, object] = ExpiringCache(maxsize)
    scanning = _Scanning(maxsize)
    now = NOW
    for op, key, amount in steps:
        if op == "tick":
            now += amount
        elif op == "put":
            value = object()
            for cache in (bounded, scanning):
                cache.put(key, value, deadline=now + amount, now=now)
        else:
            assert bounded.get(key, now) is scanning.get(key, now)
        assert list(bounded._entries) == list(scanning._entries)
        assert list(bounded._probation) == list(scanning._probation)


def test_a_full_cache_of_long_lived_entries_evicts_without_reading_deadlines() -> None:
    read = []

    class Counting(ExpiringCache[int, int]):
        def _expired(
            self, segment: dict[int, tuple[int, float]], now: float
        ) -> tuple[list[int], float]:
            read.append(len(segment))
            return super()._expired(segment, now)

    cache = Counting(100)
    for i in range(1_000):
        cache.put(i, i, deadline=NOW + 3_600, now=NOW + i / 1_000)
    assert len(cache) == 100 and read == []  # none had expired: no scan
    cache.put(-1, -1, deadline=NOW + 1.5, now=NOW + 1)  # expires soon: the next batch looks
    for i in range(1_000, 1_011):
        cache.put(i, i, deadline=NOW + 3_600, now=NOW + 2)
    assert read and cache.get(-1, NOW + 2) is None


def test_expired_entries_of_the_main_segment_go_before_live_ones() -> None:
    cache: ExpiringCache[int, int] = ExpiringCache(20)  # main holds 18
    for i in range(18):
        cache.put(i, i, deadline=NOW + (1 if i == 5 else 60), now=NOW)
        assert cache.get(i, NOW) == i  # promoted
    later = NOW + 2
    cache.put(100, 100, deadline=later + 60, now=later)
    assert cache.get(100, later) == 100  # promoted into a full main: the expired one goes
    assert all(cache.get(i, later) == i for i in range(18) if i != 5)
