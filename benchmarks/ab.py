"""Interleaved A/B of two bearerguard source trees in one process: `ab.py OLD_SRC`.

The tree on `PYTHONPATH` (normally this worktree's `src`) is "new"; OLD_SRC's `bearerguard` is
copied to a temporary directory as the package `bearerguard_old` (its imports are relative, so it
runs as it is) and imported beside it. Each round measures every case once, in a rotating order,
the collector on, each call on a fresh copy of its input: never-seen tokens (`--alg`, default
HS256) through a full default cache (10 000; a stream of 12 000, 1 000 per round) and the minimal
verifier keeping its results; `verify()` hits over 300 tokens of a full cache; a Starlette
request behind each `BearerAuthMiddleware` on a hit, and bare; a FastAPI route behind each
`auth.requires()` on a hit, and behind FastAPI's `HTTPBearer`. Prints, per pair, the median of
the per-round ratios and their interquartile range. For changes too small for the suite's runs
on a busy machine: both trees see the same load in the same rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from apps import _scope  # noqa: E402
from common import AUDIENCE, minimal_verifier, mint  # noqa: E402
from fastapi import FastAPI, Security  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

import bearerguard as new  # noqa: E402
from bearerguard.testing import LocalIssuer  # noqa: E402

CACHE, STREAM, PER_ROUND, HITS = 10_000, 12_000, 1_000, 300
QUICK = (100, 120, 10, 12)  # --quick: proves the script runs, measures nothing


def _load_old(src: Path) -> ModuleType:
    tmp = Path(tempfile.mkdtemp(prefix="bearerguard-ab-"))
    shutil.copytree(src / "bearerguard", tmp / "bearerguard_old")
    sys.path.insert(0, str(tmp))
    return importlib.import_module("bearerguard_old")


def _server(package: ModuleType, issuer: LocalIssuer, alg: str, cache: int) -> Any:
    options: dict[str, Any] = {"issuer": issuer.issuer, "audience": AUDIENCE, "algorithms": [alg]}
    if alg.startswith("HS"):
        options["shared_secret"] = issuer.shared_secret(alg)
    else:
        options["jwks_uri"] = issuer.jwks_uri
    server = package.ResourceServer(package.Issuer(**options), token_cache_size=cache)
    server.warm()  # no I/O while measuring
    return server


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Any) -> None:
    return None


async def _orders(request: Request) -> Response:
    return PlainTextResponse("ok")


def _starlette(package: ModuleType | None = None, server: Any = None) -> Starlette:
    middleware = []
    if package is not None:
        asgi = importlib.import_module(f"{package.__name__}.asgi")
        middleware.append(Middleware(asgi.BearerAuthMiddleware, server=server))
    return Starlette(routes=[Route("/orders", _orders)], middleware=middleware)


def _fastapi(package: ModuleType, server: Any) -> FastAPI:
    fastapi_module = importlib.import_module(f"{package.__name__}.integrations.fastapi")
    auth = fastapi_module.BearerAuth(server, token_url="https://login.example.test/token")
    app = FastAPI()
    bearer = HTTPBearer()

    @app.get("/requires")
    async def required(_: Any = auth.requires("orders.read")) -> str:  # noqa: B008
        return "ok"

    @app.get("/httpbearer")
    async def httpbearer(_: HTTPAuthorizationCredentials = Security(bearer)) -> str:  # noqa: B008
        return "ok"

    return app


def _report(samples: dict[str, list[float]], title: str) -> None:
    pairs = [
        ("miss new / old", "miss new", "miss old"),
        ("miss old / minimal", "miss old", "miss minimal"),
        ("miss new / minimal", "miss new", "miss minimal"),
        ("hit new / old", "hit new", "hit old"),
        ("asgi hit new / old", "asgi new", "asgi old"),
        ("asgi hit old / bare", "asgi old", "asgi bare"),
        ("asgi hit new / bare", "asgi new", "asgi bare"),
        ("fastapi requires() new / old", "fastapi new", "fastapi old"),
        ("fastapi requires() old / HTTPBearer", "fastapi old", "fastapi httpbearer"),
        ("fastapi requires() new / HTTPBearer", "fastapi new", "fastapi httpbearer"),
    ]
    print(title)
    for name, values in samples.items():
        print(f"{name:24} median {statistics.median(values) / 1000:8.2f} µs")
    for label, a, b in pairs:
        ratios = sorted(x / y for x, y in zip(samples[a], samples[b], strict=True))
        q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
        print(f"{label:40} {statistics.median(ratios):.3f} x  (IQR {q1:.3f} to {q3:.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old_src", type=Path)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--alg", default="HS256", help="the tokens' algorithm (default HS256)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args()
    cache, stream, per_round, hits_size = QUICK if args.quick else (CACHE, STREAM, PER_ROUND, HITS)
    old = _load_old(args.old_src)
    loop = asyncio.new_event_loop()
    alg = args.alg
    with LocalIssuer(algorithms=(alg,), audience=AUDIENCE) as issuer:
        tokens = mint(issuer, alg, stream)
        raw = [token.encode() for token in tokens]
        servers = {name: _server(p, issuer, alg, cache) for name, p in (("old", old), ("new", new))}
        reference = minimal_verifier(issuer, alg, keep=cache)
        verifiers: dict[str, Callable[[str], Any]] = {
            "old": servers["old"].verify,
            "new": servers["new"].verify,
            "minimal": reference.check,
        }
        for verify in verifiers.values():  # the warm-up: every cache full, evicting
            for token in raw:
                verify(token.decode())
        cursor = dict.fromkeys(verifiers, 0)
        hits = raw[-hits_size:]  # the last ones in: in every cache
        asgi = {
            "bare": _starlette(),
            "old": _starlette(old, servers["old"]),
            "new": _starlette(new, servers["new"]),
        }
        fastapi = {"old": _fastapi(old, servers["old"]), "new": _fastapi(new, servers["new"])}
        headers = [b"Bearer " + token for token in hits]

        def miss(name: str) -> float:
            start = cursor[name]
            items = [raw[(start + i) % stream].decode() for i in range(per_round)]
            cursor[name] = (start + per_round) % stream
            verify = verifiers[name]
            began = time.perf_counter_ns()
            for token in items:
                verify(token)
            return (time.perf_counter_ns() - began) / per_round

        def hit(name: str) -> float:
            items = [token.decode() for token in hits]
            verify = verifiers[name]
            began = time.perf_counter_ns()
            for token in items:
                verify(token)
            return (time.perf_counter_ns() - began) / hits_size

        def request(app: Any, path: str) -> float:
            scopes = [_scope(path, bytes(header)) for header in headers]

            async def run() -> int:
                began = time.perf_counter_ns()
                for scope in scopes:
                    await app(scope, _receive, _discard)
                return time.perf_counter_ns() - began

            return loop.run_until_complete(run()) / hits_size

        cases: dict[str, Callable[[], float]] = {
            "miss old": lambda: miss("old"),
            "miss new": lambda: miss("new"),
            "miss minimal": lambda: miss("minimal"),
            "hit old": lambda: hit("old"),
            "hit new": lambda: hit("new"),
            "asgi bare": lambda: request(asgi["bare"], "/orders"),
            "asgi old": lambda: request(asgi["old"], "/orders"),
            "asgi new": lambda: request(asgi["new"], "/orders"),
            "fastapi httpbearer": lambda: request(fastapi["new"], "/httpbearer"),
            "fastapi old": lambda: request(fastapi["old"], "/requires"),
            "fastapi new": lambda: request(fastapi["new"], "/requires"),
        }
        for case in cases.values():  # once, untimed: lazy imports, the apps' first requests
            case()
        samples: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for index in range(args.rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(cases[name]())
        for server in servers.values():
            server.close()
    _report(samples, f"{alg}, {args.rounds} rounds, interleaved; old: {args.old_src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
