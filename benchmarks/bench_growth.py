"""How cost grows: with the token's size, the JWKS's size and the number of trusted issuers.

Token size: 1 to 1000 scopes (the size cap is raised to 64 KiB for this group only), fitted to ns
per extra byte, bearerguard against the minimal verifier keeping its results. JWKS size and issuer
count must be flat: a key is found by `kid` and an issuer by `iss`, both dict lookups. Never-seen
tokens are streams through a full, evicting cache, as in the verify groups, but of
`GROWTH_CACHE` entries rather than the default 10 000: a stream must outnumber its cache, and a
stream of 12 000 tokens of 31 KB per size would cost minutes to mint and ~0.4 GB to hold. The
eviction work per insert does not depend on the cache's size (a batch of a tenth per tenth).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from common import (
    AUDIENCE,
    bearerguard_cases,
    config,
    minimal_cases,
    minimal_verifier,
    mint,
    no_io_guard,
    warmed,
)
from cryptography.hazmat.primitives.asymmetric import ec
from harness import Case, Group, Pair, Settings, Slope, register
from jwt.algorithms import ECAlgorithm
from reference import Verifier

from bearerguard import Issuer, ResourceServer
from bearerguard.testing import LocalIssuer

ALG = "RS256"
SLOPE_BUDGET = 6.0  # design.md: at most ~6 ns per extra token byte
FLAT_BUDGET = 1.10  # "flat": 100 keys or issuers cost no more than 1.10 x one
GROWTH_CACHE = 1_000  # the verified-token cache of these groups (quick: the settings' smaller one)


def _cache(settings: Settings) -> int:
    return min(GROWTH_CACHE, settings.cache_size)


@register("growth.token-size", "RS256 tokens with 1, 10, 100 and 1000 scopes: ns per extra byte.")
def token_size(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        size_cache = _cache(settings)
        stream = settings.stream_size(size_cache)
        servers: list[ResourceServer] = []

        def server(token_cache_size: int) -> ResourceServer:
            made = warmed(
                config(issuer, ALG), max_token_bytes=65536, token_cache_size=token_cache_size
            )
            servers.append(made)
            return made

        def reference(keep: int) -> Verifier:
            return minimal_verifier(issuer, ALG, max_bytes=65536, keep=keep)

        cases: list[Case] = []
        checks: list[Callable[[], list[str]]] = []
        series: dict[str, list[str]] = {"cold": [], "warm": [], "reference": [], "own": []}
        for count in (1, 10, 100, 1000):
            label = f"{count} scopes"
            scopes = [f"orders.region{i:04d}.read" for i in range(count)]
            tokens = mint(issuer, ALG, stream, scopes)
            size = float(len(tokens[0]))
            ours = bearerguard_cases(server, tokens, settings, label, size_cache)
            (ref, _), ref_check = minimal_cases(reference, tokens, settings, label, size_cache)
            # The same sizes, but the first scope differs per token: no two tokens share a scope
            # claim (one client's tokens do), so no scope set is shared; the scope sets are
            # forgotten before each round (untimed), the tokens stream as the others do.
            own_claims = [
                mint(issuer, ALG, 1, [f"orders.client{j:04d}.read", *scopes[1:]])[0]
                for j in range(stream)
            ]
            own_server = server(token_cache_size=size_cache)
            own = Case(
                f"bearerguard verify() cold {label}, each token its own scope claim",
                own_server.verify,
                own_claims,
                reset=_forget_scope_sets(own_server),
                size=float(len(own_claims[0])),
                per_round=settings.per_round(size_cache),
            )
            ref.size = ours.cold.size = ours.warm.size = size
            cases += [ref, ours.cold, ours.warm, own]
            checks += [ours.check, ref_check]
            kinds = ("reference", "cold", "warm", "own")
            for kind, case in zip(kinds, (ref, ours.cold, ours.warm, own), strict=True):
                series[kind].append(case.name)
        io_check = no_io_guard([issuer])
        yield Group(
            cases=cases,
            checks=[
                Slope("bearerguard cold, per extra byte", tuple(series["cold"]), "B", SLOPE_BUDGET),
                Slope("minimal verifier, keeping, per extra byte", tuple(series["reference"]), "B"),
                Slope("bearerguard warm, per extra byte", tuple(series["warm"]), "B"),
                Slope(
                    "bearerguard cold, per extra byte, each token its own scope claim",
                    tuple(series["own"]),
                    "B",
                ),
                *(
                    Pair(
                        f"cold / minimal verifier, {name.split()[-2]} scopes",
                        name,
                        ref_name,
                        mean=True,
                    )
                    for name, ref_name in zip(series["cold"], series["reference"], strict=True)
                ),
            ],
            notes=[
                f"token sizes: {[int(c.size or 0) for c in cases[::4]]} bytes",
                "the cold cases share one scope set per scope claim, as one client's tokens do"
                " (the scope sets are kept between rounds); the 'own scope claim' cases forget"
                " them before each round",
            ],
            after=lambda: [note for check in checks for note in check()] + io_check(),
        )
        for each in servers:
            each.close()


def _forget_scope_sets(server: ResourceServer) -> Callable[[], None]:
    def forget() -> None:
        for trusted in server._trusted.values():
            trusted.scope_sets.clear()

    return forget


@register("growth.jwks-size", "One RS256 token against a JWKS of 1, 10 and 100 keys: flat.")
def jwks_size(settings: Settings) -> Iterator[Group]:
    issuers = [LocalIssuer(algorithms=(ALG,), audience=AUDIENCE).start() for _ in range(3)]
    servers: list[ResourceServer] = []
    try:
        cases: list[Case] = []
        checks: list[Callable[[], list[str]]] = []
        for issuer, count in zip(issuers, (1, 10, 100), strict=True):
            jwks = issuer.jwks()["keys"]
            fillers = [_filler_jwk(i) for i in range(count - 1)]
            # The token's key sits in the middle of the set, as after a few rotations.
            keys = fillers[: len(fillers) // 2] + jwks + fillers[len(fillers) // 2 :]
            issuer.set_jwks_body(json.dumps({"keys": keys}).encode())

            def server(token_cache_size: int, issuer: LocalIssuer = issuer) -> ResourceServer:
                made = warmed(config(issuer, ALG), token_cache_size=token_cache_size)
                servers.append(made)
                return made

            tokens = mint(issuer, ALG, settings.stream_size(_cache(settings)))
            ours = bearerguard_cases(server, tokens, settings, f"{count} keys", _cache(settings))
            cases += [ours.cold, ours.warm]
            checks.append(ours.check)
        yield _flat(cases, "keys", "1 key", issuers, checks, "filler keys: ES256, own kids")
    finally:
        for each in servers:
            each.close()
        for issuer in issuers:
            issuer.stop()


@register("growth.issuers", "One RS256 token with 1, 10 and 100 trusted issuers: flat.")
def issuer_count(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        cases: list[Case] = []
        checks: list[Callable[[], list[str]]] = []
        servers: list[ResourceServer] = []
        tokens = mint(issuer, ALG, settings.stream_size(_cache(settings)))
        for count in (1, 10, 100):
            others = [
                Issuer(
                    issuer=f"https://tenant-{i}.example.com/",
                    audience=AUDIENCE,
                    jwks_uri=f"https://tenant-{i}.example.com/keys",  # never fetched
                )
                for i in range(count - 1)
            ]

            def server(token_cache_size: int, others: list[Issuer] = others) -> ResourceServer:
                # Not `warmed()`: that would fetch every issuer's keys. One verification fetches
                # the keys of the one issuer the tokens need; its token is then forgotten.
                trusted = [*others, config(issuer, ALG)]
                made = ResourceServer(trusted, token_cache_size=token_cache_size)
                made.verify(tokens[-1])
                made._tokens.discard(tokens[-1])
                servers.append(made)
                return made

            ours = bearerguard_cases(server, tokens, settings, f"{count} issuers", _cache(settings))
            cases += [ours.cold, ours.warm]
            checks.append(ours.check)
        note = "the other issuers are never contacted"
        yield _flat(cases, "issuers", "1", [issuer], checks, note)
        for each in servers:
            each.close()


def _flat(  # noqa: PLR0917
    cases: list[Case],
    what: str,
    one: str,
    issuers: list[LocalIssuer],
    checks: list[Callable[[], list[str]]],
    note: str,
) -> Group:
    """Cold and warm cases for 1, 10 and 100 of `what`, in that order, each against the first."""
    io_check = no_io_guard(issuers)
    return Group(
        cases=cases,
        checks=[
            Pair(f"cold: 10 {what} / {one}", cases[2].name, cases[0].name, FLAT_BUDGET, mean=True),
            Pair(f"cold: 100 {what} / {one}", cases[4].name, cases[0].name, FLAT_BUDGET, mean=True),
            Pair(f"warm: 100 {what} / {one}", cases[5].name, cases[1].name, FLAT_BUDGET),
        ],
        notes=[note],
        after=lambda: [line for check in checks for line in check()] + io_check(),
    )


def _filler_jwk(index: int) -> dict[str, object]:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": f"filler-{index}", "use": "sig", "alg": "ES256"}
