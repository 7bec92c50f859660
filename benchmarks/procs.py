"""Measurements that need a process of their own: a verified-token cache filled with N tokens,
what a hit costs there, what a full collection of the garbage collector costs there, and what
each cached entry holds in memory. The cache's objects are then the only difference between two
processes, so the collector's work and the memory are those of the cache and nothing else.

`Worker(fill, cache_size, pool)` starts a child (multiprocessing, spawn: a fresh interpreter),
which mints `fill` typical tokens (HS256, ~900 bytes: a realistic access token with the claims an
Entra ID token carries; the signature algorithm does not matter to a hit or to memory), verifies
them into a server whose cache holds `cache_size`, and answers `hits(target_ns)` (ns per hit over
fresh copies of `pool` of those tokens, the collector on) and `collect()` (ns of one full
`gc.collect()`). `memory(fill)` runs a one-shot child and returns per-entry figures.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from common import AUDIENCE, EXTRA_CLAIMS, SCOPES, config, hits, minimal_verifier, mint, warmed

from bearerguard import ResourceServer
from bearerguard.testing import LocalIssuer

ALG = "HS256"  # the fill and pause workers: fast to mint 100k of
MEMORY_ALG = "RS256"  # the memory worker: the verify groups' token
# Claims an Entra ID access token carries beyond those of `common.EXTRA_CLAIMS`: with them an HS256
# token is ~920 bytes, the size of a typical RS256 access token.
ENTRA_CLAIMS: dict[str, Any] = {
    "oid": "5b1f9c2e-7d3a-4f60-8e21-9a4c6b0d3f75",
    "appid": "0f5c3a1e-6b7d-4e0a-9c2f-3a8b7d6e5f41",
    "appidacr": "1",
    "idp": "https://sts.windows.net/8eaef023-2b34-4da1-9baa-8bc8c9d6a490/",
    "rh": "0.AXQAI_Cujr0roU2bqovIydakkB6zUw9ptgpOnC86i31uX0F0AAA.",
    "uti": "q3mT9xKcBE6yN8L2vR5pAA",
    "ver": "1.0",
}
_CONTEXT = multiprocessing.get_context("spawn")


def typical_tokens(issuer: LocalIssuer, count: int) -> list[bytes]:
    """`count` distinct typical tokens as bytes: a cache then holds the only `str` of each, as a
    server's cache holds the only copy once its request is gone."""
    claims = EXTRA_CLAIMS | ENTRA_CLAIMS
    scope = " ".join(SCOPES)
    return [
        issuer.mint(alg=ALG, scope=scope, expires_in=3600, **claims).encode() for _ in range(count)
    ]


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hits(verify: Callable[[str], Any], chosen: list[bytes], target_ns: int) -> float:
    elapsed = calls = 0
    while elapsed < target_ns:
        items = [raw.decode() for raw in chosen]  # fresh strings, made untimed
        start = time.perf_counter_ns()
        for token in items:
            verify(token)
        elapsed += time.perf_counter_ns() - start
        calls += len(items)
    return elapsed / calls


def _collect() -> float:
    start = time.perf_counter_ns()
    gc.collect()
    return float(time.perf_counter_ns() - start)


def _serve(conn: Connection, fill: int, cache_size: int, pool: int, kind: str) -> None:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        server = ResourceServer(config(issuer, ALG), token_cache_size=cache_size)
        reference = minimal_verifier(issuer, ALG, keep=cache_size)
        verify = server.verify if kind == "bearerguard" else reference.check
        raw = typical_tokens(issuer, fill)
        for token in raw:
            verify(token.decode())
        held = len(server._tokens) if kind == "bearerguard" else len(reference.kept)
        if held != fill:
            raise RuntimeError(f"the cache holds {held} of {fill} tokens")
        chosen = hits(raw, pool) if raw else []
        gc.collect()
        conn.send({"bytes": len(raw[0]) if raw else 0, "rss": _rss()})
        while True:
            command, argument = conn.recv()
            if command == "stop":
                break
            if command == "hits":
                conn.send(_hits(verify, chosen, argument))
            elif command == "collect":
                conn.send(_collect())
        server.close()


def _stream(conn: Connection, kind: str, cache_size: int, per_round: int, size: int) -> None:
    """A stream of `size` never-seen typical tokens through one full cache of `cache_size`
    (bearerguard's, or the minimal verifier's kept results), `per_round` per "misses" command:
    ns per miss, and the ns of the full collections that ran during the pass, per miss."""
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        raw = typical_tokens(issuer, size)
        server = ResourceServer(config(issuer, ALG), token_cache_size=cache_size)
        reference = minimal_verifier(issuer, ALG, keep=cache_size)
        op: Callable[[str], Any] = server.verify if kind == "bearerguard" else reference.check
        for raw_token in raw:  # the warm-up pass: the cache is full, and evicting, from here on
            op(raw_token.decode())
        full = [0, 0, 0]  # collections, their ns, the start of the current one

        def count(phase: str, info: dict[str, Any]) -> None:
            if info["generation"] == 2:
                if phase == "start":
                    full[2] = time.perf_counter_ns()
                else:
                    full[0] += 1
                    full[1] += time.perf_counter_ns() - full[2]

        gc.collect()
        conn.send({"bytes": len(raw[0])})
        cursor = 0
        while True:
            command, _ = conn.recv()
            if command == "stop":
                break
            items = [raw[(cursor + i) % size].decode() for i in range(per_round)]
            cursor = (cursor + per_round) % size
            full[:2] = [0, 0]
            gc.callbacks.append(count)
            start = time.perf_counter_ns()
            for token in items:
                op(token)
            elapsed = time.perf_counter_ns() - start
            gc.callbacks.remove(count)
            conn.send(
                {
                    "ns": elapsed / per_round,
                    "full collections, ns per miss": full[1] / per_round,
                    "full collections": float(full[0]),
                }
            )
        server.close()


class Worker:
    """A child process holding a server whose cache holds `fill` tokens (see the module; with
    `kind="minimal"`, the minimal verifier keeping them instead), or, with
    `stream=(kind, per_round, size)`, feeding a stream of never-seen tokens to `kind`
    ("bearerguard" or "minimal") through a full cache of `cache_size`."""

    def __init__(
        self,
        fill: int,
        cache_size: int,
        pool: int,
        stream: tuple[str, int, int] | None = None,
        kind: str = "bearerguard",
    ) -> None:
        self.fill = fill
        self._conn, child = _CONTEXT.Pipe()
        target: Callable[..., None] = _serve
        args: tuple[Any, ...] = (child, fill, cache_size, pool, kind)
        if stream is not None:
            target, args = _stream, (child, stream[0], cache_size, stream[1], stream[2])
        self._process = _CONTEXT.Process(target=target, args=args, daemon=True)
        self._process.start()
        child.close()
        self.info: dict[str, Any] = {}

    def ready(self) -> dict[str, Any]:
        """Wait until the cache is filled; what the child reports (token bytes, RSS)."""
        if not self.info:
            if not self._conn.poll(900):
                raise RuntimeError(f"the worker filling {self.fill} tokens did not answer")
            self.info = self._conn.recv()
        return self.info

    def ask(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def probe(self, command: str, argument: Any = None) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            answer = self.ask(command, argument)
            return answer if isinstance(answer, dict) else {"ns": float(answer)}

        return run

    def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(("stop", None))
            self._process.join(30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._conn.close()


def _entries(conn: Connection, fill: int, cache_size: int) -> None:
    """One-shot: what `fill` cached tokens add to a process, per token."""
    alg = MEMORY_ALG
    with LocalIssuer(algorithms=(alg,), audience=AUDIENCE) as issuer:
        raw = [token.encode() for token in mint(issuer, alg, fill)]

        def server() -> ResourceServer:
            return warmed(config(issuer, alg), token_cache_size=cache_size)

        # Every code path once, outside what is counted (lazy imports, interned names, the
        # scope set the tokens share).
        spare = server()
        for spare_token in mint(issuer, alg, 20):
            spare.verify(spare_token)
        servers = [server(), server()]
        for each in servers:
            each.verify(raw[0].decode())  # the scope set of these tokens, shared by all
            each._tokens.clear()
        gc.collect()
        rss = _rss()
        # GC-tracked objects per entry as a slope between half and all of the fill: a constant
        # (a table resized once, a segment's bookkeeping) is not spread over the entries, so two
        # objects per entry read 2.00, not 2.0001.
        half = fill // 2
        for token in raw[:half]:
            servers[0].verify(token.decode())
        gc.collect()
        objects = len(gc.get_objects())
        for token in raw[half:]:
            servers[0].verify(token.decode())
        gc.collect()
        objects, rss = len(gc.get_objects()) - objects, _rss() - rss
        tracemalloc.start()
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0]
        for token in raw:
            servers[1].verify(token.decode())
        gc.collect()
        start, traced = traced, tracemalloc.get_traced_memory()[0] - traced
        # The same entries once a handler has read each token's claims (decoded then, and kept).
        cache = servers[1]._tokens
        for access in (*cache._entries.values(), *cache._probation.values()):
            access.claims.get("sub")
        gc.collect()
        read = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.stop()
        held = len(servers[1]._tokens)
        if held != fill or len(servers[0]._tokens) != fill:
            raise RuntimeError(f"the cache holds {held} of {fill} tokens")
        conn.send(
            {
                "bytes (tracemalloc)": traced / fill,
                "bytes once the claims are read (tracemalloc)": read / fill,
                "bytes (RSS)": rss / fill,
                "GC-tracked objects": objects / (fill - half),
                "token string bytes": float(sys.getsizeof(raw[0].decode())),
                "token bytes": float(len(raw[0])),
            }
        )
        for each in (spare, *servers):
            each.close()


def memory(fill: int, cache_size: int) -> dict[str, float]:
    """Per cached entry, in a fresh process: tracemalloc and RSS bytes, GC-tracked objects (and
    the token's own string and length, for reading the bytes)."""
    conn, child = _CONTEXT.Pipe()
    process = _CONTEXT.Process(target=_entries, args=(child, fill, cache_size), daemon=True)
    process.start()
    child.close()
    try:
        if not conn.poll(600):
            raise RuntimeError("the memory worker did not answer")
        result: dict[str, float] = conn.recv()
        return result
    finally:
        process.join(30)
        conn.close()
