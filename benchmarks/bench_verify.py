"""Verification of one realistic access token, per algorithm, against references and peers.

Measured in the same rounds, each call on a fresh copy of its token: the bare signature check (the
floor); the minimal careful verifier of reference.py keeping its results in a bounded map, as
bearerguard does, on a miss (a stream of never-seen tokens through its full map) and a hit, and
without a map (information); the peers PyJWT `jwt.decode` and authlib (when installed), which
keep nothing; bearerguard `verify()` on a miss (its default cache, full and evicting) and on a hit,
with the cache off (information), `averify()` and `authenticate()` on a hit.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from common import (
    AUDIENCE,
    authlib_decoder,
    bearerguard_cases,
    config,
    minimal_cases,
    minimal_verifier,
    mint,
    no_io_guard,
    pyjwt_decoder,
    uncached,
    verification_key,
    warmed,
)
from harness import Case, Check, Group, Pair, Settings, register
from reference import Verifier, b64url, signature_check

from bearerguard import ResourceServer
from bearerguard.testing import LocalIssuer

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "HS256")
# design.md: a token never seen, verified and cached, within 1.15 x the minimal verifier that
# also keeps its result (RS256; 1.25 x for HS256, whose signature is a small part of the work).
MISS_BUDGET = {"HS256": 1.25}
DEFAULT_MISS_BUDGET = 1.15

MINIMAL = "minimal verifier, keeping (reference.py)"
MINIMAL_HIT = "minimal verifier, keeping, hit"
MINIMAL_BARE = "minimal verifier, no cache (reference.py)"
SIGNATURE = "signature only (cryptography)"
PYJWT = "PyJWT jwt.decode"
AUTHLIB = "authlib JsonWebToken.decode + validate"
COLD = "bearerguard verify() cold"
WARM = "bearerguard verify() warm"
CACHE_OFF = "bearerguard verify() cold, cache off (token_cache_size=0)"
AVERIFY = "bearerguard averify() warm"
AUTHENTICATE = "bearerguard authenticate() warm"


def _verify_group(alg: str, settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(alg,), audience=AUDIENCE) as issuer:
        tokens = mint(issuer, alg, settings.stream_size())
        key = verification_key(issuer, alg)
        check = signature_check(alg, key)
        parts = [(t.rsplit(".", 1)[0].encode(), _signature(t)) for t in tokens]

        def reference(keep: int) -> Verifier:
            return minimal_verifier(issuer, alg, keep=keep)

        def server(token_cache_size: int) -> ResourceServer:
            return warmed(config(issuer, alg), token_cache_size=token_cache_size)

        ours = bearerguard_cases(server, tokens, settings)
        (minimal, minimal_hit), minimal_check = minimal_cases(reference, tokens, settings)
        cache_off = warmed(config(issuer, alg), token_cache_size=0)
        hit_tokens = list(ours.warm.items)
        cases = [
            Case(SIGNATURE, lambda p: check(*p), **uncached(settings, parts)),
            minimal,
            minimal_hit,
            Case(MINIMAL_BARE, reference(keep=0).verify, **uncached(settings, tokens)),
            Case(PYJWT, pyjwt_decoder(issuer, alg), **uncached(settings, tokens)),
            ours.cold,
            ours.warm,
            Case(CACHE_OFF, cache_off.verify, **uncached(settings, tokens)),
            Case(AVERIFY, ours.server.averify, hit_tokens),
            Case(AUTHENTICATE, ours.server.authenticate, [f"Bearer {t}" for t in hit_tokens]),
        ]
        checks: list[Check] = [
            Pair(
                "miss: bearerguard / minimal verifier, both keeping the result",
                COLD,
                MINIMAL,
                MISS_BUDGET.get(alg, DEFAULT_MISS_BUDGET),
                mean=True,
            ),
            Pair(
                "miss, cache off: bearerguard / minimal verifier, no cache",
                CACHE_OFF,
                MINIMAL_BARE,
                mean=True,
            ),
            Pair("miss: bearerguard / PyJWT", COLD, PYJWT, mean=True),
        ]
        authlib = authlib_decoder(issuer, alg)
        if authlib is not None:
            cases.insert(5, Case(AUTHLIB, authlib, **uncached(settings, tokens)))
            checks.append(Pair("miss: bearerguard / authlib", COLD, AUTHLIB, mean=True))
        checks += [
            Pair("keeping the result: bearerguard cache on / off", COLD, CACHE_OFF, mean=True),
            Pair(
                "keeping the result: minimal verifier keeping / no cache",
                MINIMAL,
                MINIMAL_BARE,
                mean=True,
            ),
            Pair("minimal verifier, keeping / signature only", MINIMAL, SIGNATURE, mean=True),
            Pair("PyJWT / minimal verifier, keeping", PYJWT, MINIMAL, mean=True),
            Pair("hit: bearerguard verify() / minimal verifier, keeping", WARM, MINIMAL_HIT),
            Pair("hit: bearerguard authenticate() / verify()", AUTHENTICATE, WARM),
            Pair("hit: warm / cold", WARM, COLD),
        ]
        io_check = no_io_guard([issuer])
        yield Group(
            cases=cases,
            checks=checks,
            notes=[
                f"{len(tokens)} distinct tokens of {len(tokens[0])} bytes, {alg}",
                "peers without a cache" + ("" if authlib else " (authlib is not installed)"),
            ],
            after=lambda: ours.check() + minimal_check() + io_check(),
        )
        for each in (ours.server, ours.cold_server, cache_off):
            each.close()


def _signature(token: str) -> bytes:
    return b64url(token.rsplit(".", 1)[1])


for _alg in ALGORITHMS:
    register(
        f"verify.{_alg}",
        f"Verifying one realistic {_alg} access token: references, peers and bearerguard,"
        " never seen (verified and cached) and seen.",
    )(partial(_verify_group, _alg))
