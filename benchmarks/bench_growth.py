"""How cost grows: with the token's size, the JWKS's size and the number of trusted issuers.

Token size: 1 to 1000 scopes (the size cap is raised to 64 KiB for this group only), fitted to ns
per extra byte, bearerguard against the minimal verifier. The warm case decodes the token from
bytes first, so each request hashes a new string, as a middleware does. JWKS size and issuer count
must be flat: a key is found by `kid` and an issuer by `iss`, both dict lookups.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from common import AUDIENCE, bearerguard_cases, config, mint, no_io_guard, verification_key, warmed
from cryptography.hazmat.primitives.asymmetric import ec
from harness import Case, Group, Pair, Settings, Slope, register
from jwt.algorithms import ECAlgorithm
from reference import Verifier

from bearerguard import Issuer, ResourceServer
from bearerguard.testing import LocalIssuer

ALG = "RS256"
SLOPE_BUDGET = 6.0  # design.md: at most ~6 ns per extra token byte
FLAT_BUDGET = 1.10  # "flat": 100 keys or issuers cost no more than 1.10 x one


@register("growth.token-size", "RS256 tokens with 1, 10, 100 and 1000 scopes: ns per extra byte.")
def token_size(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        server = warmed(config(issuer, ALG), max_token_bytes=65536)
        reference = Verifier(
            alg=ALG,
            key=verification_key(issuer, ALG),
            kid=issuer.kid(ALG),
            issuer=issuer.issuer,
            audience=AUDIENCE,
            max_bytes=65536,
        )
        cases: list[Case] = []
        series: dict[str, list[str]] = {"cold": [], "warm": [], "reference": [], "own": []}
        pool = max(4, settings.pool // 4)

        def forget_all() -> None:  # tokens and scope sets: nothing of these tokens was seen
            server._tokens.clear()
            for trusted in server._trusted.values():
                trusted.scope_sets.clear()

        for count in (1, 10, 100, 1000):
            scopes = [f"orders.region{i:04d}.read" for i in range(count)]
            tokens = mint(issuer, ALG, pool, scopes)
            size = float(len(tokens[0]))
            cold, _ = bearerguard_cases(server, tokens, f"{count} scopes")
            # The same sizes, but the first scope differs per token: no two tokens share a scope
            # claim (one client's tokens do), so no scope set is shared.
            own_claims = [
                mint(issuer, ALG, 1, [f"orders.client{j:04d}.read", *scopes[1:]])[0]
                for j in range(pool)
            ]
            own = Case(
                f"bearerguard verify() cold {count} scopes, each token its own scope claim",
                server.verify,
                own_claims,
                reset=forget_all,
                size=float(len(own_claims[0])),
            )
            raw = [token.encode("ascii") for token in tokens]
            warm = Case(
                f"bearerguard verify() warm {count} scopes",
                lambda b: server.verify(b.decode("ascii")),
                raw,
                size=size,
            )
            ref = Case(f"minimal verifier {count} scopes", reference.verify, tokens, size=size)
            cold.size = size
            cases += [ref, cold, warm, own]
            kinds = ("reference", "cold", "warm", "own")
            for kind, case in zip(kinds, (ref, cold, warm, own), strict=True):
                series[kind].append(case.name)
        yield Group(
            cases=cases,
            checks=[
                Slope("bearerguard cold, per extra byte", tuple(series["cold"]), "B", SLOPE_BUDGET),
                Slope("minimal verifier, per extra byte", tuple(series["reference"]), "B"),
                Slope("bearerguard warm, per extra byte", tuple(series["warm"]), "B"),
                Slope(
                    "bearerguard cold, per extra byte, each token its own scope claim",
                    tuple(series["own"]),
                    "B",
                ),
                *(
                    Pair(f"cold / minimal verifier, {name.split()[-2]} scopes", name, ref_name)
                    for name, ref_name in zip(series["cold"], series["reference"], strict=True)
                ),
            ],
            notes=[
                f"token sizes: {[int(c.size or 0) for c in cases[::4]]} bytes",
                "the cold cases share one scope set per scope claim, as one client's tokens do"
                " (the scope sets are kept between rounds); the 'own scope claim' cases forget"
                " them before each round",
            ],
            after=no_io_guard([issuer]),
        )
        server.close()


@register("growth.jwks-size", "One RS256 token against a JWKS of 1, 10 and 100 keys: flat.")
def jwks_size(settings: Settings) -> Iterator[Group]:
    issuers = [LocalIssuer(algorithms=(ALG,), audience=AUDIENCE).start() for _ in range(3)]
    servers: list[ResourceServer] = []
    try:
        cases: list[Case] = []
        for issuer, count in zip(issuers, (1, 10, 100), strict=True):
            jwks = issuer.jwks()["keys"]
            fillers = [_filler_jwk(i) for i in range(count - 1)]
            # The token's key sits in the middle of the set, as after a few rotations.
            keys = fillers[: len(fillers) // 2] + jwks + fillers[len(fillers) // 2 :]
            issuer.set_jwks_body(json.dumps({"keys": keys}).encode())
            server = warmed(config(issuer, ALG))
            cases += bearerguard_cases(server, mint(issuer, ALG, settings.pool), f"{count} keys")
            servers.append(server)
        yield _flat(cases, "keys", "1 key", issuers, "filler keys: ES256 public keys, own kids")
    finally:
        for server in servers:
            server.close()
        for issuer in issuers:
            issuer.stop()


@register("growth.issuers", "One RS256 token with 1, 10 and 100 trusted issuers: flat.")
def issuer_count(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        cases: list[Case] = []
        servers: list[ResourceServer] = []
        for count in (1, 10, 100):
            others = [
                Issuer(
                    issuer=f"https://tenant-{i}.example.com/",
                    audience=AUDIENCE,
                    jwks_uri=f"https://tenant-{i}.example.com/keys",  # never fetched
                )
                for i in range(count - 1)
            ]
            # Not `warmed()`: that would fetch every issuer's keys. The first verification
            # fetches the one issuer's keys that the tokens need (see bearerguard_cases).
            server = ResourceServer([*others, config(issuer, ALG)])
            cases += bearerguard_cases(server, mint(issuer, ALG, settings.pool), f"{count} issuers")
            servers.append(server)
        yield _flat(cases, "issuers", "1", [issuer], "the other issuers are never contacted")
        for server in servers:
            server.close()


def _flat(cases: list[Case], what: str, one: str, issuers: list[LocalIssuer], note: str) -> Group:
    """Cold and warm cases for 1, 10 and 100 of `what`, in that order, each against the first."""
    return Group(
        cases=cases,
        checks=[
            Pair(f"cold: 10 {what} / {one}", cases[2].name, cases[0].name, FLAT_BUDGET),
            Pair(f"cold: 100 {what} / {one}", cases[4].name, cases[0].name, FLAT_BUDGET),
            Pair(f"warm: 100 {what} / {one}", cases[5].name, cases[1].name, FLAT_BUDGET),
        ],
        notes=[note],
        after=no_io_guard(issuers),
    )


def _filler_jwk(index: int) -> dict[str, object]:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": f"filler-{index}", "use": "sig", "alg": "ES256"}
