"""The other caches on the request path: introspection (RFC 7662) and role resolution, warmed.

Next to a verified-token cache hit of an RS256 JWT measured in the same rounds: an opaque token
whose introspection answer is cached, and a JWT whose role-ID scopes resolve from the role cache.
"""

from __future__ import annotations

from collections.abc import Iterator

from common import AUDIENCE, config, mint, no_io_guard, warmed
from harness import Case, Delta, Group, Settings, register

from bearerguard import Introspection, ResourceServer, RoleResolver
from bearerguard.testing import LocalIssuer

ALG = "RS256"
HOUR = 3600.0  # cache lifetimes longer than the run: every measured request is a hit
ROLE_SCOPES = ("orders.read", "api-role:2", "api-role:5")
PRIVILEGES = {"2": ["Read Computers", "Update Computers"], "5": ["Read Policies"]}


@register("cache.introspection", "Introspection cache hit of an opaque token, beside a JWT hit.")
def _introspection(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        server = warmed(
            config(issuer, ALG),
            introspection=Introspection(
                endpoint=issuer.introspection_endpoint,
                client_id="test-client",
                client_secret="test-secret",  # LocalIssuer's test client
                cache_max_ttl=HOUR,
                allow_http=True,
                max_calls_per_second=100_000,  # the set-up's 300 calls at once, untimed
            ),
        )
        jwts = mint(issuer, ALG, settings.pool)
        opaque = [
            issuer.mint_opaque(scope="orders.read orders.write", expires_in=HOUR)
            for _ in range(settings.pool)
        ]
        for token in jwts + opaque:  # fills both caches (300 introspection calls, untimed)
            server.verify(token)
        headers = [f"Bearer {token}" for token in opaque]
        names = (
            "JWT verify(), hit",
            "opaque verify(), introspection cache hit",
            "opaque averify(), introspection cache hit",
            "opaque authenticate(), introspection cache hit",
        )
        yield Group(
            cases=[
                Case(names[0], server.verify, jwts),
                Case(names[1], server.verify, opaque),
                Case(names[2], server.averify, opaque),
                Case(names[3], server.authenticate, headers),
            ],
            checks=[Delta("introspection hit - JWT hit", names[1], names[0])],
            notes=[f"{len(opaque)} opaque tokens of {len(opaque[0])} characters"],
            after=no_io_guard([issuer]),
        )
        server.close()


@register("cache.roles", "Role-ID scopes resolved from the role cache, beside a plain JWT hit.")
def _roles(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        lookups: list[str] = []

        def privileges(role_id: str) -> list[str]:
            lookups.append(role_id)
            return PRIVILEGES[role_id]

        resolver = RoleResolver(privileges, ttl=HOUR)
        plain = warmed(config(issuer, ALG))
        with_roles: ResourceServer = warmed(config(issuer, ALG, roles=resolver))
        tokens = mint(issuer, ALG, settings.pool, scopes=ROLE_SCOPES)
        for token in tokens:
            plain.verify(token)
            resolved = with_roles.verify(token)
        assert resolved.has_scopes("Read Computers", "Read Policies", "orders.read")
        looked_up = len(lookups)
        names = (
            "verify(), hit, no role resolver",
            "verify(), hit, two roles from the role cache",
            "averify(), hit, two roles from the role cache",
        )

        def check() -> list[str]:
            if len(lookups) != looked_up:
                raise RuntimeError("a role lookup ran while measuring")
            return ["no role lookup ran while measuring (the role cache was warmed)"]

        io_check = no_io_guard([issuer])
        yield Group(
            cases=[
                Case(names[0], plain.verify, tokens),
                Case(names[1], with_roles.verify, tokens),
                Case(names[2], with_roles.averify, tokens),
            ],
            checks=[
                Delta("role resolution on a hit (sync)", names[1], names[0]),
                Delta("role resolution on a hit (async)", names[2], names[0]),
            ],
            notes=[f"scopes {' '.join(ROLE_SCOPES)}"],
            after=lambda: check() + io_check(),
        )
        resolver.close()
        plain.close()
        with_roles.close()
