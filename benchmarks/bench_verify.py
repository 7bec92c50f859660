"""Verification of one realistic access token, per algorithm, against two references.

Measured in the same rounds: the bare signature check (the floor), a minimal careful verifier on
`cryptography` (reference.py), PyJWT's `jwt.decode` with a preloaded key, and bearerguard's
`verify()` cold (never seen) and warm (verified-token cache hit), `averify()` warm and
`authenticate()` warm (with the `Authorization` header parsing in front).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from common import (
    AUDIENCE,
    bearerguard_cases,
    config,
    mint,
    no_io_guard,
    pyjwt_decoder,
    verification_key,
    warmed,
)
from harness import Case, Group, Limit, Pair, Settings, register
from reference import Verifier, b64url, signature_check

from bearerguard.testing import LocalIssuer

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "HS256")
MISS_BUDGET = 1.15  # design.md: a cache miss within 1.15 x the minimal verifier
HIT_BUDGET_NS = 2000.0  # design.md: a hit costs at most +2 us per request over the bare app


def _verify_group(alg: str, settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(alg,), audience=AUDIENCE) as issuer:
        server = warmed(config(issuer, alg))
        tokens = mint(issuer, alg, settings.pool)
        key = verification_key(issuer, alg)
        check = signature_check(alg, key)
        parts = [(t.rsplit(".", 1)[0].encode(), _signature(t)) for t in tokens]
        reference = Verifier(
            alg=alg,
            key=key,
            kid=issuer.kid(alg),
            issuer=issuer.issuer,
            audience=AUDIENCE,
        )
        headers = [f"Bearer {token}" for token in tokens]
        cold, warm = bearerguard_cases(server, tokens)
        cases = [
            Case("signature only (cryptography)", lambda p: check(*p), parts),
            Case("minimal verifier (reference.py)", reference.verify, tokens),
            Case("PyJWT jwt.decode", pyjwt_decoder(issuer, alg), tokens),
            cold,
            warm,
            Case("bearerguard averify() warm", server.averify, tokens),
            Case("bearerguard authenticate() warm", server.authenticate, headers),
        ]
        yield Group(
            cases=cases,
            checks=[
                Pair(
                    "miss: bearerguard cold / minimal verifier",
                    cold.name,
                    cases[1].name,
                    MISS_BUDGET,
                ),
                Pair("miss: bearerguard cold / PyJWT", cold.name, cases[2].name),
                Pair("minimal verifier / signature only", cases[1].name, cases[0].name),
                Pair("PyJWT / minimal verifier", cases[2].name, cases[1].name),
                Limit("hit: bearerguard authenticate() warm", cases[6].name, HIT_BUDGET_NS),
                Pair("hit: warm / cold", warm.name, cold.name),
            ],
            notes=[f"{len(tokens)} distinct tokens of {len(tokens[0])} bytes, {alg}"],
            after=no_io_guard([issuer]),
        )
        server.close()


def _signature(token: str) -> bytes:
    return b64url(token.rsplit(".", 1)[1])


for _alg in ALGORITHMS:
    register(
        f"verify.{_alg}",
        f"Verifying one realistic {_alg} access token: references and bearerguard, cold and warm.",
    )(partial(_verify_group, _alg))
