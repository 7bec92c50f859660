"""How long new tokens are refused after the issuer republishes a `kid` with new key material.

`PYTHONPATH=src python benchmarks/key_replacement.py [--window 30]` (a drill, run by hand; `run.py`
does not collect it).

A `LocalIssuer` on 127.0.0.1 and a `ResourceServer` with the default `JWKSPolicy` (keys fresh for
300 s without `Cache-Control`, refetch cool-down 10 s). The server verifies one token (its keys are
fetched), the issuer then publishes new material under the same `kid` (as oauth2-mock-server does
when restarted), and a client sends a freshly minted token every 0.25 s for `--window` seconds,
sync and async. Printed: how long new tokens were refused (`BAD_SIGNATURE`) after the
replacement, and whether a token of the withdrawn key, cached before, was still accepted. Two
cases: the replacement comes at once after the first fetch (inside the cool-down), and after the
cool-down has passed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

from bearerguard import InvalidTokenError, Issuer, ResourceServer, testing
from bearerguard.testing import LocalIssuer


def _replace(issuer: LocalIssuer) -> None:
    if hasattr(issuer, "replace_key"):
        issuer.replace_key()
        return
    # Older test kits: the same through LocalIssuer's internals (one RS256 key), which were
    # then module-level names of testing.py (today's kit has replace_key).
    old_kit: Any = testing
    ((kid, old),) = issuer._keys.items()
    new = old_kit._generate_key(old.alg)
    issuer._keys[kid] = old_kit._SigningKey(kid, old.alg, new.private, old.published)


def _ok(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except InvalidTokenError:
        return False
    return True


def drill(wait_before: float, window: float, flavour: str) -> tuple[float | None, bool]:
    with LocalIssuer(algorithms=("RS256",)) as issuer:
        server = ResourceServer(Issuer(issuer=issuer.issuer, audience=issuer.audience))
        old_token = issuer.mint()
        loop = asyncio.new_event_loop()

        def verify(token: str) -> bool:
            if flavour == "sync":
                return _ok(lambda: server.verify(token))
            return _ok(lambda: loop.run_until_complete(server.averify(token)))

        assert verify(old_token)
        time.sleep(wait_before)
        _replace(issuer)
        start = time.monotonic()
        refused_until: float | None = None
        while time.monotonic() - start < window:
            if verify(issuer.mint()):
                refused_until = time.monotonic() - start
                break
            time.sleep(0.25)
        old_still_accepted = verify(old_token)
        loop.close()
        server.close()
        return refused_until, old_still_accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    logging.getLogger("bearerguard").setLevel(logging.ERROR)  # the refusals are counted here
    print(f"{'flavour':7} {'replaced':28} {'new tokens refused for':24} old token still accepted")
    for wait_before, label in ((0.0, "at once after the fetch"), (10.5, "after the cool-down")):
        for flavour in ("sync", "async"):
            refused, old = drill(wait_before, args.window, flavour)
            seconds = f"> {args.window:.0f} s (window)" if refused is None else f"{refused:.2f} s"
            print(f"{flavour:7} {label:28} {seconds:24} {'yes' if old else 'no'}")


if __name__ == "__main__":
    main()
