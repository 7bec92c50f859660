"""ExpiringCache: bounded, never serves past a deadline, and a flood of one-use keys cannot push
out the entries that are being hit (the segmented FIFO of `_cache.py`)."""

from __future__ import annotations

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
