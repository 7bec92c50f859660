"""What a full cache costs: a hit as the cache fills, memory per cached entry, and the pause of a
full garbage collection, each in processes of their own (procs.py) so that the cache is the only
difference between the processes compared.

Budgets (design.md): a hit costs the same (within 10 %) at 1k and 100k cached entries; at most
~1.2 KB and 2 GC-tracked objects per cached entry for a typical ~900-byte token, counting all the
entry keeps alive, its token string included (the request that brought the string is gone); a
full collection with the default cache (10 000 entries) full within 2 x that of a process with
an empty cache.
"""

from __future__ import annotations

from collections.abc import Iterator

from common import DEFAULT_CACHE_SIZE
from harness import Case, Group, Limit, Pair, Settings, register
from procs import Worker, memory

FLAT_BUDGET = 1.10  # a hit at 100k entries within 1.10 x a hit at 1k
BYTES_BUDGET = 1200.0  # per cached entry, a ~900-byte token
OBJECTS_BUDGET = 2.0  # GC-tracked objects per cached entry
PAUSE_BUDGET = 2.0  # a full collection, default cache full / empty cache


def _started(workers: list[Worker]) -> list[dict[str, object]]:
    try:
        return [worker.ready() for worker in workers]
    except BaseException:
        for worker in workers:
            worker.stop()
        raise


def _label(fill: int) -> str:
    return f"{fill // 1000}k" if fill >= 1000 and fill % 1000 == 0 else str(fill)


@register("cache.fill", "A verified-token cache hit with 1k, 10k and 100k entries cached.")
def _fill(settings: Settings) -> Iterator[Group]:
    fills = settings.fills
    ends = (fills[0], fills[-1])
    workers = [Worker(fill, max(fill, settings.cache_size), settings.pool) for fill in fills]
    # The same fills in the minimal verifier's map (a dict of the tokens, in processes of their
    # own): what a plain Python dict keyed by ~900-byte tokens pays as it grows, on this machine.
    workers += [
        Worker(fill, max(fill, settings.cache_size), settings.pool, kind="minimal") for fill in ends
    ]
    info = _started(workers)
    try:
        names = [f"verify() hit, {_label(fill)} entries cached" for fill in fills]
        names += [f"minimal verifier, keeping, hit, {_label(fill)} kept" for fill in ends]
        cases = [
            Case(name, print, [None], probe=worker.probe("hits", settings.target_ns))
            for name, worker in zip(names, workers, strict=True)
        ]
        first, last = _label(fills[0]), _label(fills[-1])
        yield Group(
            cases=cases,
            checks=[
                Pair(f"hit: {_label(fills[1])} / {first} entries", names[1], names[0]),
                Pair(
                    f"hit: {last} / {first} entries", names[len(fills) - 1], names[0], FLAT_BUDGET
                ),
                Pair(f"minimal verifier's hit: {last} / {first} kept", names[-1], names[-2]),
                Pair(
                    f"hit, {last} entries: bearerguard / minimal verifier",
                    names[len(fills) - 1],
                    names[-1],
                ),
            ],
            notes=[
                f"each fill in a process of its own, the collector on; {settings.pool} of the"
                f" cached tokens asked for again, a fresh string each call; tokens of"
                f" {info[0]['bytes']} bytes (HS256); the cache's size: the larger of the default"
                " and the fill; the minimal verifier (reference.py) keeps the same tokens in a"
                " dict of its own, each fill in a process of its own too"
            ],
        )
    finally:
        for worker in workers:
            worker.stop()


@register("gc.pause", "A full garbage collection with the default cache full, and with 100k.")
def _pause(settings: Settings) -> Iterator[Group]:
    default, largest = settings.cache_size, max(settings.fills)
    fills = (0, default, largest)
    workers = [Worker(fill, max(fill, default), settings.pool) for fill in fills]
    _started(workers)
    try:
        names = (
            "gc.collect(), an empty cache",
            f"gc.collect(), the default cache full ({_label(default)} entries)",
            f"gc.collect(), {_label(largest)} entries cached",
        )
        yield Group(
            cases=[
                Case(name, print, [None], probe=worker.probe("collect"))
                for name, worker in zip(names, workers, strict=True)
            ],
            checks=[
                Pair(
                    "full collection: default cache full / empty", names[1], names[0], PAUSE_BUDGET
                ),
                Pair(f"full collection: {_label(largest)} / empty", names[2], names[0]),
                Limit("full collection, default cache full", names[1]),
            ],
            notes=[
                "each in a process of its own: the same imports, issuer and server, only the"
                " cached tokens differ; one gc.collect() per round"
            ],
        )
    finally:
        for worker in workers:
            worker.stop()


@register(
    "gc.misses",
    "Never-seen tokens, bearerguard and the minimal verifier each in a process of its own.",
)
def _misses(settings: Settings) -> Iterator[Group]:
    per_round, size = settings.per_round(), settings.stream_size()
    kinds = ("bearerguard", "minimal")
    workers = [
        Worker(0, settings.cache_size, settings.pool, (kind, per_round, size)) for kind in kinds
    ]
    info = _started(workers)
    try:
        names = (
            "bearerguard verify(), never seen, its cache full",
            "minimal verifier, keeping, never seen, its map full",
        )
        cases = [
            Case(name, print, [None], probe=worker.probe("misses"))
            for name, worker in zip(names, workers, strict=True)
        ]
        for case in cases:
            case.units = {"full collections": "count"}
        gc_series = [f"{name}, full collections, ns per miss" for name in names]
        yield Group(
            cases=cases,
            checks=[
                Pair("miss: bearerguard / minimal verifier, keeping", *names, mean=True),
                Limit("bearerguard: full collections, per miss", gc_series[0], mean=True),
                Limit("minimal verifier: full collections, per miss", gc_series[1], mean=True),
            ],
            notes=[
                f"HS256 tokens of {info[0]['bytes']} bytes, a stream of {size} through a full"
                f" cache of {settings.cache_size}, {per_round} per round, the collector on; each"
                " verifier alone in its process, so the full collections in each are its own"
                " (in the verify groups all caches share one process and its collections);"
                " the amortized figure is the mean over the rounds"
            ],
        )
    finally:
        for worker in workers:
            worker.stop()


@register("cache.memory", "Memory and GC-tracked objects per cached entry, the default cache full.")
def _memory(settings: Settings) -> Iterator[Group]:
    fill = settings.cache_size
    name = f"{_label(fill)} typical tokens cached"
    case = Case(name, print, [None], probe=lambda: memory(fill, DEFAULT_CACHE_SIZE))
    case.units = {
        "bytes (tracemalloc)": "B",
        "bytes once the claims are read (tracemalloc)": "B",
        "bytes (RSS)": "B",
        "GC-tracked objects": "objects",
        "token string bytes": "B",
        "token bytes": "B",
    }
    yield Group(
        cases=[case],
        checks=[
            Limit(
                "per entry, bytes (tracemalloc)", f"{name}, bytes (tracemalloc)", BYTES_BUDGET, "B"
            ),
            Limit(
                "per entry once a handler read the claims, bytes (tracemalloc)",
                f"{name}, bytes once the claims are read (tracemalloc)",
                unit="B",
            ),
            Limit("per entry, bytes (RSS)", f"{name}, bytes (RSS)", unit="B"),
            Limit(
                "per entry, GC-tracked objects",
                f"{name}, GC-tracked objects",
                OBJECTS_BUDGET,
                "objects",
            ),
            Limit("of which the token's own string", f"{name}, token string bytes", unit="B"),
        ],
        notes=[
            "one fresh process per round; everything the cache keeps alive per entry, the token"
            " string included (a server's cache holds the only copy once the request is gone);"
            " the tokens share their scope claim, so one scope set serves them all; a cached"
            " token keeps its claims undecoded until `claims` is read, so the entries are also"
            " measured after reading each token's claims once (decoded then, and kept)"
        ],
        rounds=3,
    )
