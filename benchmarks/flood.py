"""Random-token floods against a LocalIssuer on 127.0.0.1 (issue 13, defect 5): the figures.

    PYTHONPATH=src python benchmarks/flood.py

Uses only default settings (it runs against older trees too, to compare). Prints:
- AS calls per 1,000 random opaque tokens, and per 1,000 JWTs of an unknown issuer or of the
  configured issuer with a duplicate member;
- 300 concurrent random tokens against an AS answering in 2 s: what a new legitimate opaque
  token and a JWT whose keys are not fetched yet get, and how long they wait;
- 12,000 random tokens after 100 legitimate answers were cached (and used): how many of the 100
  had to be introspected again (evicted). The server's wall clock stands still meanwhile, as if
  the flood took less than `negative_ttl` (the issue's took 6.5 s; LocalIssuer answers about
  400 calls a second here).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from bearerguard import (
    Introspection,
    InvalidTokenError,
    Issuer,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard.testing import LocalIssuer


def server(at: LocalIssuer, jwts: LocalIssuer | None = None, **kw: Any) -> ResourceServer:
    issuers = [Issuer(issuer=jwts.issuer, audience=jwts.audience)] if jwts else []
    return ResourceServer(
        issuers,
        introspection=Introspection(
            endpoint=at.introspection_endpoint, client_id="test-client", client_secret="test-secret"
        ),
        **kw,
    )


async def outcome(srv: ResourceServer, token: str) -> str:
    try:
        await srv.aauthenticate("Bearer " + token)
    except InvalidTokenError as exc:
        return f"401 {exc.reason.name}"
    except UpstreamUnavailableError as exc:
        return f"503 retry-after={exc.retry_after}"
    return "200"


def duplicate_member(token: str, issuer: str) -> str:
    header, _, signature = token.split(".")
    payload = json.dumps({"iss": issuer, "iss ": 1, "exp": 4_000_000_000})
    payload = payload.replace('"iss "', '"iss"')  # the same member twice
    raw = base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


async def calls_per_thousand() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with LocalIssuer() as idp, LocalIssuer() as jwts:
        kinds: dict[str, Callable[[], str]] = {
            "random opaque tokens": lambda: secrets.token_urlsafe(32),
            "JWTs of an unknown issuer": idp.mint,
            "JWTs of the configured issuer with a duplicate member": lambda: duplicate_member(
                jwts.mint(), jwts.issuer
            ),
        }
        for name, make in kinds.items():
            srv = server(idp, jwts)
            tokens = [make() for _ in range(1_000)]
            idp.reset_counts()
            started = time.perf_counter()
            results = [await outcome(srv, token) for token in tokens]
            elapsed = time.perf_counter() - started
            figures[name] = {
                "AS calls": idp.count("introspect"),
                "answers": _tally(results),
                "seconds": round(elapsed, 2),
            }
            await srv.aclose()
    return figures


async def slow_as_flood() -> dict[str, Any]:
    with LocalIssuer() as idp, LocalIssuer() as jwts:
        srv = server(idp, jwts)
        legit, jwt = idp.mint_opaque(scope="orders.read"), jwts.mint()
        idp.set_delay(2.0)
        flood = [asyncio.ensure_future(outcome(srv, secrets.token_urlsafe(32))) for _ in range(300)]
        await asyncio.sleep(0.5)

        async def timed(token: str) -> dict[str, Any]:
            started = time.perf_counter()
            answer = await outcome(srv, token)
            return {"answer": answer, "seconds": round(time.perf_counter() - started, 2)}

        new_opaque, new_jwt = await asyncio.gather(timed(legit), timed(jwt))
        results = await asyncio.gather(*flood)
        await srv.aclose()
        return {
            "new legitimate opaque token": new_opaque,
            "JWT, keys not fetched yet": new_jwt,
            "flood answers": _tally(results),
            "AS calls": idp.count("introspect"),
        }


async def eviction() -> dict[str, Any]:
    with LocalIssuer() as idp:
        # The server's wall clock stands still: the flood is as fast as the (12,000 in
        # 6.5 s, within negative_ttl) however slow LocalIssuer answers. Bounds run in real time.
        frozen = time.time()
        srv = server(idp, clock=lambda: frozen)
        legit = [idp.mint_opaque(scope=f"s{i}") for i in range(100)]
        for token in legit * 2:  # paced: within any bound on calls
            assert await outcome(srv, token) == "200"
            await asyncio.sleep(0.025)
        idp.reset_counts()
        started = time.perf_counter()
        results: list[str] = []
        for _ in range(2_400):  # 12,000 random tokens, 5 at a time (LocalIssuer's backlog)
            batch = [outcome(srv, secrets.token_urlsafe(32)) for _ in range(5)]
            results += await asyncio.gather(*batch)
        elapsed = time.perf_counter() - started
        flood_calls = idp.count("introspect")
        idp.reset_counts()
        again = [await outcome(srv, token) for token in legit]
        await srv.aclose()
        return {
            "flood seconds": round(elapsed, 2),
            "flood AS calls": flood_calls,
            "flood answers": _tally(results),
            "legitimate answers still cached": 100 - idp.count("introspect"),
            "legitimate answers evicted (introspected again)": idp.count("introspect"),
            "legitimate answers after the flood": _tally(again),
        }


def _tally(results: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result] = counts.get(result, 0) + 1
    return counts


async def main() -> None:
    logging.getLogger("bearerguard").setLevel(logging.CRITICAL)  # one line per refusal otherwise
    report = {
        "AS calls per 1,000 tokens (sent one after another)": await calls_per_thousand(),
        "300 concurrent random tokens, AS answering in 2 s": await slow_as_flood(),
        "12,000 random tokens after 100 cached answers": await eviction(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
