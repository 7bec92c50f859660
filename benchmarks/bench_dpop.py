"""DPoP (RFC 9449) on a verified-token cache hit, next to its minimal cost (issue 18).

A DPoP request whose token is cached still pays for its proof: every check of RFC 9449 §4.3,
the binding to the token's `cnf.jkt`, and the replay store's insert of the proof's `jti`. The
minimal cost of such a request is one signature verify of the proof (split from its text, the
signature decoded, verified with the known key on `cryptography`) plus the token's cache hit
(the minimal verifier's, reference.py): the floor any verifier pays. bearerguard's
`verify_credentials()` with a fresh proof is measured against it in the same rounds; budget
≤ 1.3 x.

Every call gets a proof never seen (its own `jti`, `iat` now, `ath` of its token), signed before
each round and outside the timed loop (`Case.reset`: a client signs, the server verifies); the
proof's `jti` is added to the server's replay store (the default `MemoryStore`) inside the timed
loop, as on every request, and the collector stays on. The tokens (RS256, bound to the client's
key) are spread over a full verified-token cache, as in the verify groups' hits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from common import (
    AUDIENCE,
    EXTRA_CLAIMS,
    SCOPES,
    config,
    hits,
    minimal_verifier,
    no_io_guard,
    warmed,
)
from harness import Case, Delta, Group, Pair, Settings, register
from reference import b64url, signature_check

from bearerguard import Credentials
from bearerguard.testing import DPoPKey, LocalIssuer

TOKEN_ALG = "RS256"
PROOF_ALG = "ES256"
URL = "https://api.example.com/orders/7"
BUDGET = 1.3  # issue 18: at most 1.3 x the minimal cost

MINIMAL = "minimal: the proof's signature + the token's hit (reference.py)"
DPOP_HIT = "bearerguard verify_credentials(), DPoP proof, token hit"
DPOP_AHIT = "bearerguard averify_credentials(), DPoP proof, token hit"
BEARER_HIT = "bearerguard verify() (the Bearer scheme), token hit, same server"
SIGNATURE = "the proof's signature only (cryptography)"


@register("dpop.hit", "A DPoP request on a verified-token cache hit, beside its minimal cost.")
def _dpop_hit(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(TOKEN_ALG,), audience=AUDIENCE) as issuer:
        key = DPoPKey(PROOF_ALG)
        server = warmed(config(issuer, TOKEN_ALG), dpop="allowed")
        size = settings.cache_size
        bound = [
            issuer.mint(
                alg=TOKEN_ALG,
                scope=" ".join(SCOPES),
                expires_in=3600,
                dpop_jkt=key.jkt,
                **EXTRA_CLAIMS,
            )
            for _ in range(size)
        ]
        for token in bound:  # the cache full of bound tokens, each verified with a proof
            server.verify_credentials(dpop(token, key.proof("GET", URL, token)))
        minimal = minimal_verifier(issuer, TOKEN_ALG, keep=size)
        for token in bound:
            minimal.check(token)
        asked = hits(bound, settings.pool)
        bearer = hits(
            [issuer.mint(alg=TOKEN_ALG, scope=" ".join(SCOPES), expires_in=3600) for _ in asked],
            settings.pool,
        )
        for token in bearer:
            server.verify(token)
        check = signature_check(PROOF_ALG, key.private_key.public_key())

        def proofs() -> list[tuple[str, str]]:
            return [(token, key.proof("GET", URL, token)) for token in asked]

        def floor(item: tuple[str, str]) -> None:
            token, proof = item
            signing_input, _, signature = proof.rpartition(".")
            if not check(signing_input.encode("ascii"), b64url(signature)):
                raise AssertionError("the proof's signature")
            minimal.check(token)

        def ours(item: tuple[str, str]) -> None:
            server.verify_credentials(dpop(*item))

        async def ours_async(item: tuple[str, str]) -> None:
            await server.averify_credentials(dpop(*item))

        signed = [
            (p.rpartition(".")[0].encode("ascii"), b64url(p.rpartition(".")[2]))
            for _, p in proofs()
        ]
        cases = [
            fresh_proofs(Case(MINIMAL, floor, []), proofs),
            fresh_proofs(Case(DPOP_HIT, ours, []), proofs),
            fresh_proofs(Case(DPOP_AHIT, ours_async, []), proofs),
            Case(BEARER_HIT, server.verify, bearer),
            Case(SIGNATURE, lambda pair: check(*pair), signed),
        ]
        stored = len(server._sender.store) if server._sender else 0  # type: ignore[arg-type]
        io_check = no_io_guard([issuer])

        def after() -> list[str]:
            added = (len(server._sender.store) if server._sender else 0) - stored  # type: ignore[arg-type]
            if added <= 0:
                raise RuntimeError("no proof's jti reached the replay store while measuring")
            return [
                f"{len(asked)} bound tokens asked per round, spread over a full cache of {size};"
                f" a fresh {PROOF_ALG} proof per call, signed before each round (untimed)",
                f"{added} jtis added to the replay store (MemoryStore) while measuring",
                *io_check(),
            ]

        yield Group(
            cases=cases,
            checks=[
                Pair("DPoP hit: bearerguard / minimal cost", DPOP_HIT, MINIMAL, BUDGET),
                Pair("DPoP hit, async: bearerguard / minimal cost", DPOP_AHIT, MINIMAL),
                Delta("DPoP hit - Bearer hit (the proof's checks)", DPOP_HIT, BEARER_HIT),
                Pair("minimal cost / the proof's signature only", MINIMAL, SIGNATURE),
            ],
            notes=[f"tokens {TOKEN_ALG} of {len(bound[0])} bytes, proofs {PROOF_ALG}"],
            after=after,
        )
        server.close()


def dpop(token: str, proof: str) -> Credentials:
    """What an adapter builds for a DPoP request: the scheme, token, method, URL and proof."""
    return Credentials("DPoP", token, "GET", URL, (proof,))


def fresh_proofs(case: Case, make: Callable[[], list[Any]]) -> Case:
    """`case` whose items are new proofs before each round (and the warm-up): never replayed."""
    items: list[Any] = case.items  # type: ignore[assignment]

    def reset() -> None:
        items[:] = make()

    reset()
    case.reset = reset
    return case
