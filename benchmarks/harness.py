"""The measuring machinery: benchmark groups in a registry, interleaved rounds, medians, ratios.

A group is a set of cases measured together. Every round runs each case once, in a rotating
order, so slow drift on a shared machine (another process, a CPU frequency change) lands on all
cases of a round alike; a ratio is then taken round by round and its median reported.

What a real request pays is what is measured: the garbage collector stays on (`--no-gc` turns it
off for each round, the old method, for comparison only), and every call gets a fresh copy of
its input made just before the pass, untimed, so no string arrives with its hash already computed.
A *stream* case (a token never seen) takes the next `per_round` items of a pool larger than the
cache in front of it, in order, round after round: each call misses, is verified, inserted, and
pays its share of the evictions of a cache kept full; nothing is emptied between rounds. The
full collections that run while a case is timed are counted per case (`gc.callbacks`).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Settings:
    """How hard to measure. `quick` is a smoke run: it proves the harness works, nothing more."""

    rounds: int = 31
    pool: int = 300  # distinct inputs (tokens) per case
    target_ns: int = 15_000_000  # the least time one round of a case should take
    quick: bool = False
    gc: bool = True  # False: the collector off for each round (the old method)
    # The verified-token cache in front of a stream of never-seen tokens: the library's default,
    # so a miss pays the evictions of the default configuration (quick: a small one).
    cache_size: int = 10_000
    fills: tuple[int, ...] = (1_000, 10_000, 100_000)  # cached entries, hit cost versus fill

    @classmethod
    def for_mode(cls, *, quick: bool) -> Settings:
        if quick:
            return cls(
                rounds=3,
                pool=12,
                target_ns=1_000_000,
                quick=True,
                cache_size=100,
                fills=(100, 400, 1_600),
            )
        return cls()

    def stream_size(self, cache_size: int | None = None) -> int:
        """Never-seen tokens to cycle through: more than a cache of `cache_size` can hold, so a
        token has been evicted before its turn comes again."""
        size = self.cache_size if cache_size is None else cache_size
        return size + max(size // 5, self.per_round(size))

    def per_round(self, cache_size: int | None = None) -> int:
        """Misses per round of a stream case: at least a tenth of the cache, so each round holds
        whole eviction cycles (an evicting cache pays in batches; a round of 300 misses would
        mostly miss the batch and the median would leave it out)."""
        size = self.cache_size if cache_size is None else cache_size
        return max(self.pool, size // 10)


@dataclass
class Case:
    """One measured operation: `op(item)` for every item, a coroutine function if `op` is async."""

    name: str
    op: Callable[[Any], Any]
    items: Sequence[Any]
    # Untimed, before each round: forgets state that the case must not find (never the
    # verified-token cache: never-seen tokens come from a stream instead).
    reset: Callable[[], None] | None = None
    size: float | None = None  # the x of a growth fit (bytes, keys, issuers)
    # A stream: `per_round` items per round taken in order from `items` (cycling), each once;
    # the warm-up pass goes over all of them, so the caches are full before the first round.
    per_round: int | None = None
    cursor: int = 0  # where the next round of a stream starts
    # A case that measures itself (a load generator over HTTP): one call is one round, and gives
    # ns per request under "ns" plus other series (say "p99") recorded as "NAME, p99".
    probe: Callable[[], dict[str, float]] | None = None
    units: dict[str, str] = field(default_factory=dict)  # a probe's series other than ns: "B"


@dataclass(frozen=True)
class Pair:
    """`numerator / denominator`, round by round; over budget if the median exceeds `budget`
    (or, with `at_least`, falls below it).

    With `mean`, the ratio of the two cases' means over the same rounds is reported beside it:
    for misses, whose survivors bring on a full collection now and then (in one trial, once in
    20 000 misses in a process holding one full default cache). The median of per-round ratios
    leaves the round that holds one out; the ratio of means charges it to whichever case was
    running, which in a process shared by several caches is partly chance. The verdict stays on
    the median; read both, the per-case count of full collections while timed, and `gc.misses`,
    where each verifier has a process of its own."""

    label: str
    numerator: str
    denominator: str
    budget: float | None = None
    at_least: bool = False
    mean: bool = False


@dataclass(frozen=True)
class Delta:
    """`case - baseline` in ns, round by round: what a layer adds; over budget above `budget`."""

    label: str
    case: str
    baseline: str
    budget: float | None = None


@dataclass(frozen=True)
class Slope:
    """Least-squares ns per unit of `Case.size` over `cases`; over budget above `budget`."""

    label: str
    cases: tuple[str, ...]
    unit: str
    budget: float | None = None


@dataclass(frozen=True)
class Limit:
    """The median (with `mean`, the mean) of one case's series, in `unit` (ns unless told); over
    budget above `budget`."""

    label: str
    case: str
    budget: float | None = None
    unit: str = "ns"
    mean: bool = False


@dataclass
class Group:
    """What a registered builder yields: cases plus the figures to derive from them."""

    cases: list[Case]
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    after: Callable[[], list[str]] | None = None  # called after measuring: more notes, or raise
    rounds: int | None = None  # fewer rounds than the settings say (long cases over HTTP)


Check = Pair | Delta | Slope | Limit


class Skip(Exception):  # not an error: the group cannot run here, and says why
    """Raised by a group's set-up when this machine lacks what it needs (a load generator)."""


Builder = Callable[[Settings], AbstractContextManager[Group]]


@dataclass(frozen=True)
class Registered:
    name: str
    doc: str
    build: Builder


REGISTRY: dict[str, Registered] = {}


def register(name: str, doc: str) -> Callable[[Callable[[Settings], Iterator[Group]]], Builder]:
    """Register a generator function that sets up, yields a `Group`, then tears down."""

    def decorate(function: Callable[[Settings], Iterator[Group]]) -> Builder:
        if name in REGISTRY:
            raise ValueError(f"benchmark group {name!r} is registered twice")
        build = contextmanager(function)
        REGISTRY[name] = Registered(name, doc, build)
        return build

    return decorate


def select(patterns: Sequence[str]) -> list[Registered]:
    """Groups whose name equals a pattern or starts with `pattern.`; all of them if none given."""
    if not patterns:
        return list(REGISTRY.values())
    chosen = [
        entry
        for entry in REGISTRY.values()
        if any(entry.name == p or entry.name.startswith(p + ".") for p in patterns)
    ]
    if not chosen:
        raise SystemExit(f"no benchmark group matches {list(patterns)}; see --list")
    return chosen


# -- measuring ---------------------------------------------------------------------------------


def fresh(item: Any) -> Any:
    """A new copy of `item` whose hash was never computed: what a request's token is."""
    if isinstance(item, str):
        return item.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
    if isinstance(item, bytes):
        return bytes(bytearray(item))
    if isinstance(item, tuple):
        return tuple(fresh(part) for part in item)
    return item


def _sync_pass(op: Callable[[Any], Any], items: Sequence[Any]) -> int:
    start = time.perf_counter_ns()
    for item in items:
        op(item)
    return time.perf_counter_ns() - start


async def _async_pass(op: Callable[[Any], Any], items: Sequence[Any]) -> int:
    start = time.perf_counter_ns()
    for item in items:
        await op(item)
    return time.perf_counter_ns() - start


class _Runner:
    """Times passes of a case (fresh inputs each), on a long-lived event loop for async ones."""

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.Runner()
        self._gc = settings.gc
        # Full collections (generation 2) that ran inside each case's timed passes: how many,
        # and their total ns. The callback runs on every collection; it only compares an int.
        self.full_collections: dict[str, list[int]] = {}
        self._timing: str | None = None
        self._started = 0
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2 or self._timing is None:
            return
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            counts = self.full_collections.setdefault(self._timing, [0, 0])
            counts[0] += 1
            counts[1] += time.perf_counter_ns() - self._started

    def pass_items(self, case: Case, *, warm_up: bool = False) -> list[Any]:
        """The inputs of one pass, freshly copied; for a stream, the next `per_round` of it."""
        if case.per_round is None or warm_up:
            return [fresh(item) for item in case.items]
        count = len(case.items)
        chosen = [case.items[(case.cursor + i) % count] for i in range(case.per_round)]
        case.cursor = (case.cursor + case.per_round) % count
        return [fresh(item) for item in chosen]

    def time(self, case: Case, repeat: int, *, warm_up: bool = False) -> tuple[int, int]:
        """(ns, calls) of `repeat` passes, each over freshly copied inputs."""
        if case.probe is not None:
            raise TypeError(f"case {case.name!r} measures itself")
        if case.reset is not None:
            case.reset()
        total = calls = 0
        is_async = inspect.iscoroutinefunction(case.op)
        if not self._gc:  # the old method: collected once, then off for the round
            gc.collect()
            gc.disable()
        try:
            for _ in range(repeat):
                items = self.pass_items(case, warm_up=warm_up)
                self._timing = None if warm_up else case.name
                if is_async:
                    total += self._loop.run(_async_pass(case.op, items))
                else:
                    total += _sync_pass(case.op, items)
                self._timing = None
                calls += len(items)
        finally:
            self._timing = None
            if not self._gc:
                gc.enable()
        return total, calls

    def close(self) -> None:
        gc.callbacks.remove(self._on_collection)
        self._loop.close()


def measure(
    group: Group, settings: Settings, collections: dict[str, list[int]] | None = None
) -> dict[str, list[float]]:
    """ns per operation of every case, one sample per round, rounds interleaved across cases;
    `collections` (when given) receives each case's [full collections, their ns] while timed."""
    runner = _Runner(settings)
    try:
        repeats = {}
        samples: dict[str, list[float]] = {}
        gc.collect()  # the set-up's garbage, once: not charged to the first round
        for case in group.cases:
            if case.probe is not None:
                continue
            samples[case.name] = []
            if not case.items:
                raise ValueError(f"case {case.name!r} has no items")
            # The warm-up pass (a stream: over the whole pool, which fills its caches), also the
            # calibration. A stream is never repeated within a round: its items would be seen.
            elapsed, calls = runner.time(case, 1, warm_up=True)
            per_pass = elapsed * len(case.items) / max(1, calls)
            repeats[case.name] = (
                1
                if case.per_round is not None or case.reset is not None
                else max(1, math.ceil(settings.target_ns / max(1.0, per_pass)))
            )
        count = len(group.cases)
        rounds = min(settings.rounds, group.rounds or settings.rounds)
        for round_ in range(rounds):
            shift = round_ % count
            for case in group.cases[shift:] + group.cases[:shift]:
                if case.probe is not None:
                    for series, value in case.probe().items():
                        name = case.name if series == "ns" else f"{case.name}, {series}"
                        samples.setdefault(name, []).append(value)
                    continue
                elapsed, calls = runner.time(case, repeats[case.name])
                samples[case.name].append(elapsed / calls)
        if collections is not None:
            collections.update(runner.full_collections)
        return samples
    finally:
        runner.close()


# -- summarising -------------------------------------------------------------------------------


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile); all three the value itself for one sample."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def summarise(samples: list[float]) -> dict[str, Any]:
    q1, median, q3 = quartiles(samples)
    return {
        "median_ns": median,
        "q1_ns": q1,
        "q3_ns": q3,
        "min_ns": min(samples),
        "max_ns": max(samples),
        "spread_pct": 100 * (q3 - q1) / median if median else 0.0,
        "samples_ns": samples,
    }


def derive(
    check: Check, samples: dict[str, list[float]], sizes: dict[str, float]
) -> dict[str, Any]:
    """One figure with its quartiles and verdict: "ok", "over" (the budget), or "info"."""
    extra: dict[str, Any] = {}
    if isinstance(check, Pair):
        numerator, denominator = samples[check.numerator], samples[check.denominator]
        ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
        q1, value, q3 = quartiles(ratios)
        unit, kind = "x", "ratio"
        if check.mean:
            extra = {"ratio_of_means": statistics.fmean(numerator) / statistics.fmean(denominator)}
    elif isinstance(check, Delta):
        deltas = [a - b for a, b in zip(samples[check.case], samples[check.baseline], strict=True)]
        q1, value, q3 = quartiles(deltas)
        unit, kind = "ns", "delta"
    elif isinstance(check, Slope):
        per_round = [
            _slope(
                [sizes[name] for name in check.cases], [samples[name][i] for name in check.cases]
            )
            for i in range(len(samples[check.cases[0]]))
        ]
        q1, value, q3 = quartiles(per_round)
        unit, kind = f"ns/{check.unit}", "slope"
    else:
        q1, value, q3 = quartiles(samples[check.case])
        unit, kind = check.unit, "limit"
        if check.mean:
            extra = {"median_of_rounds": value}
            value, kind = statistics.fmean(samples[check.case]), "mean"
    at_least = isinstance(check, Pair) and check.at_least
    if check.budget is None:
        verdict = "info"
    else:
        verdict = "ok" if (value >= check.budget if at_least else value <= check.budget) else "over"
    return {
        "label": check.label,
        "kind": kind,
        "value": value,
        "q1": q1,
        "q3": q3,
        "unit": unit,
        "budget": check.budget,
        "at_least": at_least,
        "verdict": verdict,
    } | extra


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    den = sum((x - mean_x) ** 2 for x in xs)
    return num / den


def profile(entry: Registered, settings: Settings, pattern: str, seconds: float = 2.0) -> None:
    """Print a pyinstrument profile of each case whose name contains `pattern` (nothing saved)."""
    from pyinstrument import Profiler  # noqa: PLC0415  # only this needs the `bench` group

    with entry.build(settings) as group:
        runner = _Runner(settings)
        try:
            for case in (c for c in group.cases if pattern in c.name and c.probe is None):
                profiler = Profiler(interval=0.0001)
                deadline = time.perf_counter() + seconds
                with profiler:
                    while time.perf_counter() < deadline:
                        runner.time(case, 1)
                print(f"== {entry.name}: {case.name}")
                print(profiler.output_text(unicode=True, color=False))
        finally:
            runner.close()


def run_group(entry: Registered, settings: Settings) -> dict[str, Any]:
    """Build, measure and summarise one registered group."""
    started = time.perf_counter()
    collections: dict[str, list[int]] = {}
    with entry.build(settings) as group:
        samples = measure(group, settings, collections)
        notes = list(group.notes) + (group.after() if group.after else [])
    sizes = {case.name: case.size for case in group.cases if case.size is not None}
    cases = {case.name: case for case in group.cases}
    units = {f"{c.name}, {series}": unit for c in group.cases for series, unit in c.units.items()}
    return {
        "name": entry.name,
        "doc": entry.doc,
        "seconds": round(time.perf_counter() - started, 1),
        "rounds": min(settings.rounds, group.rounds or settings.rounds),
        "cases": [
            {"name": name, "items": len(cases[name].items) if name in cases else 0}
            | {"stream": name in cases and cases[name].per_round is not None}
            | {"per_round": cases[name].per_round if name in cases else None}
            | {"unit": units.get(name, "ns")}
            | {"full_collections": collections.get(name, [0, 0])[0]}
            | {"full_collections_ns": collections.get(name, [0, 0])[1]}
            | summarise(series)
            for name, series in samples.items()
        ],
        "checks": [derive(check, samples, sizes) for check in group.checks],
        "notes": notes,
    }
