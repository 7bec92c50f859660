"""The benchmark suite still runs, and measures what it says: quick smoke runs of its groups (no
timing asserted), and the harness's method (the collector on, fresh inputs, never-seen tokens as
a stream through a full cache) checked on a tiny group of its own."""

from __future__ import annotations

import gc
import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bearerguard import ResourceServer

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RUN = BENCHMARKS / "run.py"

pytestmark = pytest.mark.skipif(not RUN.exists(), reason="benchmarks/ is not in this tree")


def _quick(tmp_path: Path, *groups: str, timeout: int = 180) -> dict[str, Any]:
    command = [sys.executable, str(RUN), "--quick", *groups, "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    results: dict[str, Any] = json.loads((tmp_path / "quick.json").read_text())
    return results


def _group(results: dict[str, Any], name: str) -> dict[str, Any]:
    groups: list[dict[str, Any]] = [g for g in results["groups"] if g["name"] == name]
    (group,) = groups
    return group


def _budgeted(group: dict[str, Any]) -> dict[str, float]:
    return {c["label"]: c["budget"] for c in group["checks"] if c["budget"] is not None}


@pytest.fixture
def harness() -> Iterator[Any]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import harness

        yield harness
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_quick_run_of_one_group_writes_json_and_markdown(tmp_path: Path) -> None:
    results = _quick(tmp_path, "verify.HS256")

    assert results["settings"]["quick"] is True
    assert results["settings"]["gc"] is True
    assert results["machine"]["cpu"]
    assert results["machine"]["openssl"]
    group = _group(results, "verify.HS256")
    names = {case["name"] for case in group["cases"]}
    assert {"minimal verifier, keeping (reference.py)", "minimal verifier, keeping, hit"} <= names
    assert {"minimal verifier, no cache (reference.py)", "PyJWT jwt.decode"} <= names
    assert {"bearerguard verify() cold", "bearerguard verify() warm"} <= names
    assert "bearerguard verify() cold, cache off (token_cache_size=0)" in names
    streams = {case["name"] for case in group["cases"] if case["stream"]}
    assert {"bearerguard verify() cold", "minimal verifier, keeping (reference.py)"} <= streams
    for case in group["cases"]:
        assert len(case["samples_ns"]) == results["settings"]["rounds"]
        assert all(sample > 0 for sample in case["samples_ns"])
    assert {check["verdict"] for check in group["checks"]} <= {"ok", "over", "info"}
    assert _budgeted(group) == {
        "miss: bearerguard / minimal verifier, both keeping the result": 1.25
    }
    (miss,) = [c for c in group["checks"] if c["budget"] is not None]
    assert miss["ratio_of_means"] > 0  # shown beside the median of the per-round ratios
    assert all(case["full_collections"] >= 0 for case in group["cases"])
    notes = " ".join(group["notes"])
    assert "no request reached the issuer while measuring" in notes
    assert "bearerguard verify() cold: 12 never-seen tokens per round" in notes
    assert "through a full cache of 100" in notes
    table = (tmp_path / "quick.md").read_text()
    assert "## verify.HS256" in table
    assert "miss: bearerguard / minimal verifier, both keeping the result" in table
    assert "garbage collector on" in table


def test_the_ab_script_compares_two_trees_in_one_process() -> None:
    src = Path(__file__).resolve().parents[1] / "src"
    command = [sys.executable, str(BENCHMARKS / "ab.py"), str(src), "--quick", "--rounds", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    for pair in ("miss new / old", "hit new / old", "asgi hit new / bare", "HTTPBearer"):
        assert pair in done.stdout


def test_list_names_every_group() -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(RUN), "--list"], capture_output=True, text=True, check=True
    )
    groups = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"verify.RS256", "verify.HS256", "growth.token-size", "growth.jwks-size"} <= groups
    assert "growth.issuers" in groups
    assert {"asgi.starlette", "asgi.fastapi", "wsgi.plain", "wsgi.flask", "http.uvicorn"} <= groups
    assert {"cache.introspection", "cache.roles", "cache.fill", "cache.memory"} <= groups
    assert {"gc.pause", "gc.misses"} <= groups
    assert {"stores.hit", "stores.fleet"} <= groups
    assert "dpop.hit" in groups


def test_quick_run_of_the_store_groups_counts_the_fleets_calls(tmp_path: Path) -> None:
    results = _quick(tmp_path, "stores")
    fleet = {c["label"]: c for c in _group(results, "stores.fleet")["checks"]}
    # 100 tokens, each asked 10 times: one AS call per token with Redis, whatever the replicas;
    # about one per token and replica without it.
    for replicas in (1, 3, 10):
        assert fleet[f"{replicas} replicas, with Redis"]["value"] == 100
    assert fleet["10 replicas, without a shared store"]["value"] > 500
    hits = {c["label"]: c for c in _group(results, "stores.hit")["checks"]}
    assert hits["opaque token, verified-token cache hit"]["value"] > 0


def test_quick_run_of_the_middleware_groups_measures_hits_and_misses(tmp_path: Path) -> None:
    results = _quick(tmp_path, "asgi", "wsgi.plain")

    starlette = _group(results, "asgi.starlette")
    names = {case["name"] for case in starlette["cases"]}
    assert {
        "bare Starlette app",
        "BearerAuthMiddleware, hit",
        "BearerAuthMiddleware, miss",
    } <= names
    assert "minimal guard, keeping, miss (reference.py)" in names
    assert _budgeted(starlette) == {"hit: middleware / bare app": 1.25}
    fastapi = _group(results, "asgi.fastapi")
    assert _budgeted(fastapi) == {"hit: requires() / HTTPBearer route": 1.10}
    wsgi = _group(results, "wsgi.plain")
    names = {case["name"] for case in wsgi["cases"]}
    assert {"bare WSGI function", "BearerAuthWSGIMiddleware, hit"} <= names
    assert {"BearerAuthWSGIMiddleware, miss", "minimal guard, keeping, hit (reference.py)"} <= names
    for group in (starlette, fastapi, wsgi):
        assert "no request reached the issuer while measuring" in " ".join(group["notes"])
    for group in (starlette, wsgi):
        assert "never-seen tokens per round" in " ".join(group["notes"])


def test_quick_run_of_the_process_groups_and_the_readme_table(tmp_path: Path) -> None:
    results = _quick(tmp_path, "cache.fill", "gc", "cache.memory", timeout=300)

    fill = _group(results, "cache.fill")
    assert _budgeted(fill) == {"hit: 1600 / 100 entries": 1.10}
    assert all(len(case["samples_ns"]) == 3 for case in fill["cases"])
    pause = _group(results, "gc.pause")
    assert _budgeted(pause) == {"full collection: default cache full / empty": 2.0}
    misses = _group(results, "gc.misses")
    measured = {case["name"] for case in misses["cases"]}
    gc_series = "bearerguard verify(), never seen, its cache full, full collections, ns per miss"
    assert gc_series in measured
    assert not _budgeted(misses)
    memory = _group(results, "cache.memory")
    assert _budgeted(memory) == {
        "per entry, bytes (tracemalloc)": 1200.0,
        "per entry, GC-tracked objects": 2.0,
    }
    series = {case["name"].split(", ", 1)[1]: case for case in memory["cases"]}
    assert series["token bytes"]["unit"] == "B"
    assert 800 <= series["token bytes"]["median_ns"] <= 1000  # the typical ~900-byte token
    # What a cached token keeps alive includes at least its own string.
    assert series["bytes (tracemalloc)"]["median_ns"] > series["token string bytes"]["median_ns"]
    assert series["GC-tracked objects"]["median_ns"] >= 1

    second = tmp_path / "again.json"
    second.write_text((tmp_path / "quick.json").read_text())
    table = [sys.executable, str(BENCHMARKS / "readme_table.py"), str(tmp_path / "quick.json")]
    done = subprocess.run([*table, str(second)], capture_output=True, text=True, check=True)  # noqa: S603
    assert "QUICK SMOKE RUNS, NOT RESULTS" in done.stdout
    assert "| gc.pause | full collection: default cache full / empty | ≤ 2.00 x |" in done.stdout
    assert "| cache.memory | per entry, GC-tracked objects | ≤ 2.00 objects |" in done.stdout


def test_the_harness_keeps_the_collector_on_and_streams_never_seen_inputs(harness: Any) -> None:
    """A stream case through a bounded map: every timed call misses and inserts, each call gets
    a fresh copy of its input, and the collector is on while it is timed."""
    settings = harness.Settings.for_mode(quick=True)
    capacity = settings.cache_size
    kept: dict[str, None] = {}
    seen: list[tuple[bool, bool, bool]] = []  # (a miss, the collector on, a fresh copy)
    originals = {f"token-{i:05d}" * 20: None for i in range(settings.stream_size())}
    identities = {id(token) for token in originals}

    def check(token: str) -> None:
        seen.append((token not in kept, gc.isenabled(), id(token) not in identities))
        kept[token] = None
        if len(kept) > capacity:
            del kept[next(iter(kept))]

    stream = harness.Case("stream", check, list(originals), per_round=settings.per_round(capacity))
    group = harness.Group(cases=[stream])
    samples = harness.measure(group, settings)

    assert len(samples["stream"]) == settings.rounds
    timed = seen[len(originals) :]  # after the warm-up pass over the whole stream
    assert len(timed) == settings.rounds * settings.per_round(capacity)
    assert all(miss for miss, _, _ in timed)
    assert all(collector for _, collector, _ in timed)
    assert all(copy for _, _, copy in seen)
    assert len(kept) == capacity  # full, and evicting, all along
    assert settings.stream_size() > capacity
    assert settings.per_round(capacity) >= capacity // 10


def test_full_collections_while_timed_are_counted_per_case(harness: Any) -> None:
    settings = harness.Settings.for_mode(quick=True)
    group = harness.Group(
        cases=[
            harness.Case("collects", lambda _: gc.collect(), [1], per_round=2),
            harness.Case("does not", lambda _: None, [1]),
        ]
    )
    collections: dict[str, list[int]] = {}

    harness.measure(group, settings, collections)

    assert collections["collects"][0] == 2 * settings.rounds  # the warm-up pass is not counted
    assert collections["collects"][1] > 0
    assert "does not" not in collections
    assert all(
        getattr(c, "__func__", None) is not harness._Runner._on_collection for c in gc.callbacks
    )


def test_the_old_method_is_still_available_for_comparison(harness: Any) -> None:
    settings = harness.Settings(**{**vars(harness.Settings.for_mode(quick=True)), "gc": False})
    states: list[bool] = []
    group = harness.Group(cases=[harness.Case("op", lambda _: states.append(gc.isenabled()), [1])])

    harness.measure(group, settings)

    assert states
    assert not any(states)
    assert gc.isenabled()


def test_a_full_run_measures_the_default_configuration(harness: Any) -> None:
    """A never-seen token in a full run goes through the library's default cache."""
    default = inspect.signature(ResourceServer).parameters["token_cache_size"].default
    settings = harness.Settings.for_mode(quick=False)
    assert settings.cache_size == default
    assert settings.gc is True
    assert settings.fills == (1_000, 10_000, 100_000)
    assert settings.stream_size() > default
    assert settings.per_round() >= default // 10


def test_fresh_copies_are_equal_and_new(harness: Any) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9." * 10
    raw = token.encode()
    for item in (token, raw, (token, raw)):
        copy = harness.fresh(item)
        assert copy == item
    assert harness.fresh(token) is not token
    assert harness.fresh(raw) is not raw
    assert all(a is not b for a, b in zip(harness.fresh((token, raw)), (token, raw), strict=True))


def test_the_minimal_verifier_keeps_a_bounded_map_evicting_the_oldest(harness: Any) -> None:
    from reference import Verifier  # benchmarks/ is on the path (fixture)

    from bearerguard.testing import LocalIssuer

    issuer = LocalIssuer(algorithms=("HS256",), audience="api://orders")
    with issuer:
        tokens = [issuer.mint(alg="HS256", expires_in=3600) for _ in range(5)]
        verifier = Verifier(
            alg="HS256",
            key=issuer.shared_secret("HS256"),
            kid=issuer.kid("HS256"),
            issuer=issuer.issuer,
            audience="api://orders",
            keep=3,
        )
        verified: list[str] = []
        bare = verifier.verify

        def counting(token: str) -> dict[str, Any]:
            verified.append(token)
            return bare(token)

        verifier.verify = counting  # type: ignore[method-assign]
        results = [verifier.check(token) for token in tokens]

        assert list(verifier.kept) == tokens[2:]  # the oldest two evicted
        assert verifier.check(tokens[4]) is results[4]  # a hit: no verification
        assert verified == tokens
        verifier.check(tokens[0])  # evicted before: verified again, and kept
        assert verified == [*tokens, tokens[0]]
        assert list(verifier.kept) == [*tokens[3:], tokens[0]]


def test_the_readme_table_says_when_runs_disagree() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import readme_table
    finally:
        sys.path.remove(str(BENCHMARKS))

    def run(verdict: str, value: float) -> dict[str, Any]:
        check = {"label": "hit: middleware / bare app", "value": value, "unit": "x"}
        check |= {"budget": 1.25, "at_least": False, "verdict": verdict}
        return {"groups": [{"name": "asgi.starlette", "checks": [check]}]}

    rows = readme_table.budget_rows([run("ok", 1.2), run("over", 1.3)], ["a", "b"])
    assert rows[2] == (
        "| asgi.starlette | hit: middleware / bare app | ≤ 1.25 x | 1.20 x | 1.30 x"
        " | mixed: ok / over |"
    )
    rows = readme_table.budget_rows([run("over", 1.3), run("over", 1.4)], ["a", "b"])
    assert rows[2].endswith("| **over** |")


def test_the_readme_table_takes_a_group_rerun_in_place_of_the_runs_own(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import readme_table
    finally:
        sys.path.remove(str(BENCHMARKS))

    def group(name: str, label: str, value: float) -> dict[str, Any]:
        check = {"label": label, "value": value, "unit": "x", "budget": None, "verdict": "info"}
        return {"name": name, "checks": [check]}

    full = {"groups": [group("verify.RS256", "a", 1.0), group("http.uvicorn", "b", 0.9)]}
    rerun = {"groups": [group("http.uvicorn", "b", 0.8), group("new.group", "c", 2.0)]}
    (tmp_path / "full.json").write_text(json.dumps(full))
    (tmp_path / "rerun.json").write_text(json.dumps(rerun))

    run = readme_table.load(f"{tmp_path / 'full.json'}+{tmp_path / 'rerun.json'}")

    assert [(g["name"], g["checks"][0]["value"]) for g in run["groups"]] == [
        ("verify.RS256", 1.0),
        ("http.uvicorn", 0.8),  # the rerun's, where the full run's was
        ("new.group", 2.0),
    ]


def test_the_stream_check_fails_a_stream_that_was_cached_or_a_cache_not_full(
    harness: Any,
) -> None:
    from common import stream_check  # benchmarks/ is on the path (fixture)

    tokens = [f"token-{i}" for i in range(12)]
    case = harness.Case("stream", print, tokens, per_round=3, cursor=3)
    full = dict.fromkeys(tokens[6:])  # holds none of tokens[3:6], the next round

    assert "3 never-seen tokens per round from a stream of 12" in stream_check(case, full, 6)()[0]
    with pytest.raises(RuntimeError, match="still cached"):
        stream_check(case, {tokens[4]: None, **full}, 7)()
    with pytest.raises(RuntimeError, match="held 2 of 6"):
        stream_check(case, {tokens[9]: None, tokens[10]: None}, 6)()


def test_quick_run_of_the_events_group_measures_each_subscriber_set(tmp_path: Path) -> None:
    group = _group(_quick(tmp_path, "events.otel"), "events.otel")

    names = [case["name"] for case in group["cases"]]
    assert len(names) == 5 and all(name.startswith("authenticate() hit, ") for name in names)
    labels = {check["label"] for check in group["checks"]}
    assert {"no subscriber / main", "instrument() SDK / main", "instrument() SDK - main"} <= labels
    assert "no request reached the issuer while measuring" in " ".join(group["notes"])


def test_quick_run_of_the_dpop_group_checks_fresh_proofs_against_the_floor(tmp_path: Path) -> None:
    group = _group(_quick(tmp_path, "dpop.hit"), "dpop.hit")

    names = {case["name"] for case in group["cases"]}
    assert "bearerguard verify_credentials(), DPoP proof, token hit" in names
    assert "minimal: the proof's signature + the token's hit (reference.py)" in names
    assert _budgeted(group) == {"DPoP hit: bearerguard / minimal cost": 1.3}
    notes = " ".join(group["notes"])
    assert "jtis added to the replay store" in notes  # every proof was new, and recorded
    assert "no request reached the issuer while measuring" in notes
