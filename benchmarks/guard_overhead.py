"""What a guard adds to one Starlette request on a cache hit, one token, in process: the minimal
guard of apps.py (on the minimal verifier keeping its results) and `BearerAuthMiddleware`, each
against the bare app in the same rounds. `--extra-keys N` adds N keys to each request's scope
(uvicorn's scope has one more key than apps.py's: `state`), to see a scope dict grow.

    PYTHONPATH=src python benchmarks/guard_overhead.py [--extra-keys N] [--rounds 9]

Unlike the asgi.starlette group (10k distinct tokens over a full cache: what a real request
pays), one token stays in the CPU's caches: the figure is the guards' own work.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import apps
from common import AUDIENCE, config, minimal_verifier, mint, warmed

from bearerguard._types import ASGIApp, Scope
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import LocalIssuer

ALG = "RS256"
REQUESTS = 20_000  # per case per round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra-keys", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        server = warmed(config(issuer, ALG), token_cache_size=10_000)
        (token,) = mint(issuer, ALG, 1)
        verifier = minimal_verifier(issuer, ALG)
        app = apps.starlette_app(guarded=True)
        cases: dict[str, ASGIApp] = {
            "bare Starlette app": app,
            "minimal guard (apps.py)": apps.MinimalGuard(app, verifier),
            "BearerAuthMiddleware": BearerAuthMiddleware(app, server=server),
        }
        header = f"Bearer {token}".encode()
        calls = {name: _caller(case, args.extra_keys) for name, case in cases.items()}
        times = asyncio.run(_measure(calls, header, args.rounds))
        server.close()
    bare = statistics.median(times["bare Starlette app"])
    keys = len(_scope(header, args.extra_keys))
    print(f"{args.rounds} rounds of {REQUESTS} requests, one {ALG} token, {keys} scope keys")
    for name, series in times.items():
        median = statistics.median(series)
        print(f"{name:26s} {median:7.0f} ns  +{median - bare:5.0f} ns  {median / bare:.3f} x")


def _scope(header: bytes, extra: int) -> Scope:
    scope = apps._scope("/orders", header)
    scope.update({f"extra.{i}": i for i in range(extra)})
    return scope


def _caller(app: ASGIApp, extra: int) -> Callable[[bytes], Awaitable[None]]:
    async def call(header: bytes) -> None:
        await app(_scope(header, extra), apps._receive, apps._discard)

    return call


async def _measure(
    calls: dict[str, Callable[[bytes], Awaitable[None]]], header: bytes, rounds: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        await call(header)  # the token verified, the routes warm
    for _ in range(rounds):  # interleaved: drift lands on every case alike
        for name, call in calls.items():
            started = time.perf_counter_ns()
            for _ in range(REQUESTS):
                await call(bytes(header))  # a fresh copy each request, as a server makes
            times[name].append((time.perf_counter_ns() - started) / REQUESTS)
    return times


if __name__ == "__main__":
    main()
