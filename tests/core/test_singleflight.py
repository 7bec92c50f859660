"""SingleFlight: one computation per key in flight, shared by threads and by asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bearerguard._singleflight import SingleFlight


def wait_until(condition: object, limit: float = 10.0) -> None:
    """Synchronise with other threads (not a timing assertion): poll until `condition()`."""
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "threads never got there"
        time.sleep(0.001)


def test_threads_share_one_call_and_its_result() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release, calls = threading.Event(), []

    def compute() -> int:
        calls.append(1)
        release.wait()
        return 42

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(flights.run, "k", compute) for _ in range(20)]
        try:  # released whatever happens: a failed wait must fail the test, not hang it
            wait_until(lambda: flights.callers("k") == 20)
        finally:
            release.set()
        assert [f.result() for f in futures] == [42] * 20
    assert calls == [1]
    assert flights.callers("k") == 0  # nothing remembered: the next call computes again
    assert flights.run("k", lambda: 7) == 7


def test_threads_share_the_exception() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = threading.Event()

    def compute() -> int:
        release.wait()
        raise LookupError("down")

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(flights.run, "k", compute) for _ in range(5)]
        try:
            wait_until(lambda: flights.callers("k") == 5)
        finally:
            release.set()
        for future in futures:
            with pytest.raises(LookupError):
                future.result()


def test_threads_with_different_keys_do_not_wait_for_each_other() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    release = threading.Event()

    def slow_a() -> str:
        release.wait()
        return "a"

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(flights.run, "a", slow_a)
        try:
            wait_until(lambda: flights.callers("a") == 1)
            assert flights.run("b", lambda: "b") == "b"  # not blocked by "a"
        finally:
            release.set()
        assert slow.result() == "a"


def test_tasks_share_one_call_and_its_result() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    calls = []

    async def main() -> list[int]:
        release = asyncio.Event()

        async def compute() -> int:
            calls.append(1)
            await release.wait()
            return 42

        tasks = [asyncio.ensure_future(flights.arun("k", compute)) for _ in range(50)]
        await asyncio.sleep(0)  # every task has joined the flight
        release.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [42] * 50
    assert calls == [1]


def test_tasks_share_the_exception_and_a_cancelled_caller_does_not_cancel_the_call() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    landed = []

    async def main() -> None:
        release = asyncio.Event()

        async def compute() -> int:
            await release.wait()
            landed.append(1)
            raise LookupError("down")

        first = asyncio.ensure_future(flights.arun("k", compute))
        second = asyncio.ensure_future(flights.arun("k", compute))
        await asyncio.sleep(0)
        first.cancel()  # the caller that started the call goes away
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(LookupError):
            await second
        assert first.cancelled()

    asyncio.run(main())
    assert landed == [1]


def test_each_event_loop_has_its_own_flights() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    async def one(value: int) -> int:
        async def compute() -> int:
            return value

        return await flights.arun("k", compute)

    assert asyncio.run(one(1)) == 1
    assert asyncio.run(one(2)) == 2


def test_ain_flight_says_whether_a_task_of_this_loop_computes_the_key() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    async def main() -> None:
        release = asyncio.Event()

        async def compute() -> int:
            await release.wait()
            return 1

        assert not flights.ain_flight("k")
        task = asyncio.ensure_future(flights.arun("k", compute))
        await asyncio.sleep(0)
        assert flights.ain_flight("k") and not flights.ain_flight("other")
        release.set()
        assert await task == 1
        assert not flights.ain_flight("k")  # landed: nothing remembered

    asyncio.run(main())


def test_a_thread_joining_a_flight_waits_at_most_its_wait() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    release = threading.Event()

    def compute() -> int:
        release.wait()
        return 42

    with ThreadPoolExecutor(1) as pool:
        leader = pool.submit(flights.run, "k", compute)
        try:
            wait_until(lambda: flights.callers("k") == 1)
            start = time.monotonic()
            with pytest.raises(TimeoutError):
                flights.run("k", lambda: 7, wait=0.05)  # joins, waits, gives up
            assert time.monotonic() - start < 1.0  # its 0.05 s, with room for a busy machine
            assert flights.callers("k") == 1  # it left the flight
        finally:
            release.set()
        assert leader.result() == 42  # the flight went on
