"""How long a request waits while the authorization server hangs (a drill, run by hand).

`PYTHONPATH=src python benchmarks/upstream_waits.py [--clients 3 20]`.

Not a registered group (`run.py` does not collect it): a fault drill, run by hand. A `LocalIssuer`
on 127.0.0.1 takes every connection and never answers (a delay far past any timeout); N clients
then each send one request with a valid token to a server whose key cache is cold, all at once,
through the sync twin (one thread per client, as a threaded WSGI server runs them) and the async
twin (one task per client on one loop). Printed per flavour and N: the worst and the median wait,
the answers (all must be 503: the keys cannot be had), and the requests the issuer received.

The server runs the defaults scaled by 1/10 so that a run takes seconds: `timeout=0.5` (the
default is 5 s) and a refetch cool-down of 1 s (default 10 s), with discovery, as in issue 13.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable

from bearerguard import Issuer, JWKSPolicy, ResourceServer, UpstreamUnavailableError
from bearerguard.testing import LocalIssuer

TIMEOUT = 0.5
POLICY = JWKSPolicy(min_refetch_interval=1.0)
HANG = 120.0  # the issuer's delay: longer than any wait measured here


def _server(issuer: LocalIssuer) -> ResourceServer:
    config = Issuer(issuer=issuer.issuer, audience=issuer.audience, jwks_policy=POLICY)
    return ResourceServer(config, timeout=TIMEOUT)


def _timed(call: Callable[[], object]) -> tuple[float, str]:
    start = time.monotonic()
    try:
        call()
        outcome = "200"
    except UpstreamUnavailableError:
        outcome = "503"
    except Exception as exc:  # a drill reports whatever happens
        outcome = type(exc).__name__
    return time.monotonic() - start, outcome


def sync_waits(issuer: LocalIssuer, clients: int) -> list[tuple[float, str]]:
    server = _server(issuer)
    tokens = [issuer.mint() for _ in range(clients)]
    barrier = threading.Barrier(clients)
    results: list[tuple[float, str]] = []

    def client(token: str) -> None:
        barrier.wait()
        results.append(_timed(lambda: server.authenticate("Bearer " + token)))

    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.close()
    return results


def async_waits(issuer: LocalIssuer, clients: int) -> list[tuple[float, str]]:
    tokens = [issuer.mint() for _ in range(clients)]

    async def one(server: ResourceServer, token: str) -> tuple[float, str]:
        start = time.monotonic()
        try:
            await server.aauthenticate("Bearer " + token)
            outcome = "200"
        except UpstreamUnavailableError:
            outcome = "503"
        except Exception as exc:
            outcome = type(exc).__name__
        return time.monotonic() - start, outcome

    async def main() -> list[tuple[float, str]]:
        async with _server(issuer) as server:
            return list(await asyncio.gather(*(one(server, t) for t in tokens)))

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="*", default=[3, 20])
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the refusals are expected; only the figures matter
    print(f"timeout={TIMEOUT}s cool-down={POLICY.min_refetch_interval}s, issuer hangs")
    print(f"{'flavour':8} {'clients':>7} {'worst s':>8} {'median s':>9}  answers  issuer requests")
    for flavour, run in (("sync", sync_waits), ("async", async_waits)):
        for clients in args.clients:
            with LocalIssuer() as issuer:
                issuer.set_delay(HANG)
                results = run(issuer, clients)
                asked = issuer.count()
            waits = [wait for wait, _ in results]
            counts = Counter(outcome for _, outcome in results)
            answers = ", ".join(f"{n}x{outcome}" for outcome, n in sorted(counts.items()))
            print(
                f"{flavour:8} {clients:7d} {max(waits):8.2f} {statistics.median(waits):9.2f}"
                f"  {answers:8} {asked}"
            )


if __name__ == "__main__":
    main()
