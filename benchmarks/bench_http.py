"""Over HTTP on 127.0.0.1: uvicorn serving the bare Starlette app versus the same app behind
`BearerAuthMiddleware` (a verified-token cache hit), loaded by `wrk` in bounded runs, next to the
same app behind the minimal guard of apps.py (the least a guard does: what the budget leaves room
for, measured on the same machine in the same rounds).

Each server runs in its own process, started and stopped here; `wrk` (Debian: `apt-get install -y
wrk`) takes the other core. Rounds alternate between the two servers; each reports requests per
second and the 99th percentile latency. The group is skipped, saying so, where `wrk` is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib.metadata import version
from pathlib import Path

import httpx
from common import AUDIENCE, mint, no_io_guard, verification_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from harness import Case, Group, Limit, Pair, Settings, Skip, register

import bearerguard
from bearerguard.testing import LocalIssuer

HERE = Path(__file__).resolve().parent
ALG = "RS256"
CONNECTIONS = 8
RATIO_BUDGET = 0.97  # design.md: at least 0.97 x the bare app's requests per second
_UNITS = {"us": 1e3, "ms": 1e6, "s": 1e9}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _uvicorn(factory: str, env: dict[str, str]) -> Iterator[str]:
    """`uvicorn --factory http_app:FACTORY` on a free loopback port; its base URL, then stopped."""
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", f"http_app:{factory}"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log"]
    process = subprocess.Popen(command, cwd=HERE, env=env)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn {factory} did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wrk(
    url: str, authorization: str, seconds: int, record: list[float]
) -> Callable[[], dict[str, float]]:
    """One bounded wrk run per call: ns per request (1 / throughput) and the p99 latency; the
    requests per second are also appended to `record`."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    command += ["-H", f"Authorization: {authorization}", url]

    def run() -> dict[str, float]:
        done = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=seconds + 30, check=True
        )
        out = done.stdout
        if "Non-2xx" in out or "Socket errors" in out:
            raise RuntimeError(f"wrk saw failed requests:\n{out}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
        record.append(rps)
        p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return {"ns": 1e9 / rps, "p99": float(p99[1]) * _UNITS[p99[2]]}  # type: ignore[index]

    return run


_APPS = ("bare", "protected", "minimal")  # the factories of http_app.py, one server each


@register(
    "http.uvicorn",
    "uvicorn on 127.0.0.1 and wrk: bare app, BearerAuthMiddleware, the minimal guard.",
)
def _http(settings: Settings) -> Iterator[Group]:
    if shutil.which("wrk") is None:
        raise Skip("wrk is not installed (Debian: apt-get install -y wrk)")
    seconds = 1 if settings.quick else 2
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer, ExitStack() as stack:
        source = str(Path(bearerguard.__file__).resolve().parents[1])
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join([source, str(HERE)]),
            "BEARERGUARD_ISSUER": issuer.issuer,
            "BEARERGUARD_AUDIENCE": AUDIENCE,
            "BEARERGUARD_ALGORITHMS": ALG,
            "BEARERGUARD_JWKS_URI": issuer.jwks_uri,
            "BEARERGUARD_ALLOW_HTTP": "true",
            "BENCH_MINIMAL_KEY": verification_key(issuer, ALG)
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            .decode(),
            "BENCH_MINIMAL_KID": issuer.kid(ALG),
        }
        urls = [stack.enter_context(_uvicorn(app, env)) + "/orders" for app in _APPS]
        (token,) = mint(issuer, ALG, 1)
        authorization = f"Bearer {token}"
        for url in urls:  # also puts the token in the guards' caches
            answer = httpx.get(url, headers={"Authorization": authorization}, timeout=10)
            assert answer.status_code == 200, f"{url}: {answer.status_code}"
        names = (
            "bare Starlette app, per request",
            "BearerAuthMiddleware, hit, per request",
            "minimal guard, keeping, hit, per request (reference.py)",
        )
        rps: tuple[list[float], ...] = tuple([] for _ in names)
        cases = [
            Case(name, print, [None], probe=_wrk(url, authorization, seconds, record))
            for name, url, record in zip(names, urls, rps, strict=True)
        ]
        io_check = no_io_guard([issuer])

        def after() -> list[str]:
            medians = [f"{statistics.median(r):.0f}" for r in rps]
            return [
                *io_check(),
                f"requests per second, median: bare {medians[0]}, middleware {medians[1]}, "
                f"minimal guard {medians[2]}",
                f"uvicorn {version('uvicorn')} (one process each, asyncio loop, h11), "
                f"wrk -t1 -c{CONNECTIONS} -d{seconds}s --latency, one token (a cache hit)",
            ]

        yield Group(
            cases=cases,
            checks=[
                Pair("requests/s: middleware / bare app", names[0], names[1], RATIO_BUDGET, True),
                # What the least a guard does leaves of the bare app's rate, here, in these rounds.
                Pair("requests/s: minimal guard / bare app", names[0], names[2]),
                Pair("requests/s: middleware / minimal guard", names[2], names[1]),
                Limit("p99, bare app", f"{names[0]}, p99"),
                Limit("p99, middleware", f"{names[1]}, p99"),
                Pair("p99: middleware / bare app", f"{names[1]}, p99", f"{names[0]}, p99"),
            ],
            rounds=15,  # many short runs rather than a few long ones: drift lands on both alike
            after=after,
        )
