"""What reading `AccessToken.claims` costs since the claims are decoded lazily (issue 19, fifth
pass): the first read of a cached token (its payload decoded from the token string the cache
keeps, then kept) and every later read, by `timeit` on the verify groups' realistic tokens.

    PYTHONPATH=src python benchmarks/claims_cost.py
"""

from __future__ import annotations

import timeit

from common import AUDIENCE, config, mint, warmed

from bearerguard import ResourceServer
from bearerguard.testing import LocalIssuer

N = 2000  # tokens per timing: each first read is a token's own


def main() -> None:
    for alg in ("RS256", "HS256"):
        with LocalIssuer(algorithms=(alg,), audience=AUDIENCE) as issuer:
            server = warmed(config(issuer, alg), token_cache_size=N)
            first = min(_first_reads(server, issuer, alg) for _ in range(5))
            token = server.verify(mint(issuer, alg, 1)[0])
            read = token.claims  # decoded now; later reads find it kept
            again = min(timeit.repeat("token.claims", globals=locals(), number=100_000, repeat=5))
            attribute = min(
                timeit.repeat("token.subject", globals=locals(), number=100_000, repeat=5)
            )
            print(
                f"{alg}: {len(read)} claims; first read {first * 1e6:.2f} µs, "
                f"later reads {again / 100_000 * 1e9:.0f} ns "
                f"(a plain attribute, `subject`: {attribute / 100_000 * 1e9:.0f} ns)"
            )
            server.close()


def _first_reads(server: ResourceServer, issuer: LocalIssuer, alg: str) -> float:
    """Seconds per first read of `claims`, over N tokens verified just before (untimed)."""
    tokens = [server.verify(t) for t in mint(issuer, alg, N)]
    started = timeit.default_timer()
    for token in tokens:
        token.claims  # noqa: B018
    return (timeit.default_timer() - started) / N


if __name__ == "__main__":
    main()
