"""What `verify_proof` costs next to one bare signature check with the same key (issue 18).

    PYTHONPATH=src python benchmarks/dpop_cost.py [ROUNDS]

Per algorithm, in interleaved rounds (so that load on a shared machine hits every case alike),
the median and the fastest round's µs per call (the minimum is the steadier figure on a loaded
machine) of: the bare signature check of a proof (`Key.verify`, the primitive alone); a
minimal verifier (the floor: split, lenient stdlib base64 and JSON, known key, the signature,
claim comparisons, `ath`);
`verify_proof` with the proof's header remembered (every proof after a client's first); and
`verify_proof` with that memo cleared before each call (a client's first proof: header decoding,
key import and thumbprint). Each call gets a proof it has not seen (a fresh `jti`), with an
access token.
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import NoReturn

from bearerguard._dpop import DPoPPolicy, _header, _parse, access_token_hash, verify_proof
from bearerguard._dpop_client import DPoPKey
from bearerguard._errors import Reason

URL = "https://api.example.com/orders/7"
TOKEN = "eyJhbGciOiJSUzI1NiJ9." + "x" * 600 + ".sig"  # the size of a typical JWT access token
CALLS = 200


def _unexpected(reason: Reason, why: str) -> NoReturn:
    raise AssertionError(why)


def cases(alg: str) -> dict[str, Callable[[], None]]:
    key, policy, now = DPoPKey(alg), DPoPPolicy(), int(time.time())
    proofs = [key.proof("GET", URL, TOKEN, iat=now) for _ in range(CALLS)]
    first = verify_proof(
        proofs[:1], method="GET", url=URL, access_token=TOKEN, policy=policy, now=now
    )
    signed = [_parse(proof, _unexpected)[2:] for proof in proofs]  # signing input, signature

    def bare() -> None:
        for signing_input, signature in signed:
            first.key.verify(alg, signing_input, signature)

    headers = {proof.encode().split(b".")[0]: first.key for proof in proofs}

    def minimal() -> None:
        # The floor: what any verifier that remembers keys by header must do per proof, done
        # with the standard library's lenient base64 and JSON, and no strictness of its own.
        for proof in proofs:
            raw = proof.encode("ascii")
            head, payload, sig = raw.split(b".")
            key = headers[head]
            claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
            signature = base64.urlsafe_b64decode(sig + b"=" * (-len(sig) % 4))
            if not (
                key.verify(alg, raw[: len(head) + len(payload) + 1], signature)
                and claims["htm"] == "GET"
                and claims["htu"] == URL
                and now - 60 <= claims["iat"] <= now + 5
                and claims["ath"] == access_token_hash(TOKEN)
                and isinstance(claims["jti"], str)
            ):
                raise AssertionError

    def warm() -> None:
        for proof in proofs:
            verify_proof([proof], method="GET", url=URL, access_token=TOKEN, policy=policy, now=now)

    def cold() -> None:
        for proof in proofs:
            _header.cache_clear()
            verify_proof([proof], method="GET", url=URL, access_token=TOKEN, policy=policy, now=now)

    return {
        "bare signature check": bare,
        "minimal verifier": minimal,
        "verify_proof": warm,
        "verify_proof, new key": cold,
    }


def main(rounds: int) -> None:
    for alg in ("ES256", "RS256", "EdDSA"):
        timed = cases(alg)
        samples: dict[str, list[float]] = {name: [] for name in timed}
        for _ in range(rounds):
            for name, run in timed.items():
                started = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - started) / CALLS * 1e6)
        base = statistics.median(samples["bare signature check"])
        fastest = min(samples["bare signature check"])
        for name, values in samples.items():
            median, least = statistics.median(values), min(values)
            print(
                f"{alg:6} {name:24} median {median:7.1f} µs {median / base:5.2f} x"
                f"   min {least:7.1f} µs {least / fastest:5.2f} x"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
