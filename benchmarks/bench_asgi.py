"""Per-request cost in process: a bare app versus the same app behind bearerguard's middleware.

ASGI (Starlette) and WSGI (a plain function, Flask), each called directly (apps.py), with RS256
tokens: a cache hit (the token verified before) and a miss (the verified-token cache emptied
before each round), next to a minimal hand-written guard on the minimal verifier. The budget
(design.md) is on the hit: at most +2 µs per request over the bare app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from apps import (
    MinimalGuard,
    PassThrough,
    asgi_caller,
    asgi_status,
    flask_app,
    minimal_wsgi_guard,
    plain_wsgi,
    starlette_app,
    wsgi_caller,
)
from common import AUDIENCE, config, mint, no_io_guard, verification_key, warmed
from harness import Case, Delta, Group, Pair, Settings, register
from reference import Verifier

from bearerguard import ResourceServer
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

ALG = "RS256"
HIT_BUDGET_NS = 2000.0  # design.md: a hit costs at most +2 µs per request over the bare app


class _Setup:
    """The issuer, a warmed server, tokens (all verified once: the hit cases' cache) and the
    minimal verifier, for one group."""

    def __init__(self, issuer: LocalIssuer, settings: Settings) -> None:
        self.server: ResourceServer = warmed(config(issuer, ALG))
        self.tokens = mint(issuer, ALG, settings.pool)
        for token in self.tokens:
            self.server.verify(token)
        self.verifier = Verifier(
            alg=ALG,
            key=verification_key(issuer, ALG),
            kid=issuer.kid(ALG),
            issuer=issuer.issuer,
            audience=AUDIENCE,
        )
        self.forget: Callable[[], None] = self.server._tokens.clear  # a miss on every request


def _checks(bare: str, hit: str, miss: str, minimal: str) -> list[Any]:
    return [
        Delta("hit: middleware - bare app", hit, bare, HIT_BUDGET_NS),
        Pair("hit: middleware / bare app", hit, bare),
        Delta("miss: middleware - bare app", miss, bare),
        Delta("minimal guard - bare app", minimal, bare),
        Pair("miss: middleware / minimal guard (both with the app)", miss, minimal),
    ]


@register("asgi.starlette", "Starlette through ASGI: bare versus BearerAuthMiddleware, hit, miss.")
def _starlette(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        setup = _Setup(issuer, settings)
        bare = starlette_app(guarded=False)
        guarded = BearerAuthMiddleware(starlette_app(guarded=True), server=setup.server)
        minimal = MinimalGuard(starlette_app(guarded=False), setup.verifier)
        headers = [f"Bearer {token}".encode() for token in setup.tokens]
        for app, path in ((bare, "/orders"), (guarded, "/orders"), (guarded, "/scoped")):
            status = asyncio.run(asgi_status(app, path, headers[0]))
            assert status == 200, f"{path}: {status}"
        names = (
            "bare Starlette app",
            "BearerAuthMiddleware, hit",
            "BearerAuthMiddleware + requires(), hit",
            "BearerAuthMiddleware, miss",
            "minimal guard (reference.py)",
            "a middleware that does nothing",
        )
        cases = [
            Case(names[0], asgi_caller(bare, "/orders"), headers),
            Case(names[1], asgi_caller(guarded, "/orders"), headers),
            Case(names[2], asgi_caller(guarded, "/scoped"), headers),
            Case(names[3], asgi_caller(guarded, "/orders"), headers, reset=setup.forget),
            Case(names[4], asgi_caller(minimal, "/orders"), headers),
            Case(names[5], asgi_caller(PassThrough(bare), "/orders"), headers),
        ]
        yield Group(
            cases=cases,
            checks=[
                *_checks(names[0], names[1], names[3], names[4]),
                Delta("hit: middleware + requires() - bare app", names[2], names[0]),
                Delta("a middleware that does nothing - bare app", names[5], names[0]),
            ],
            notes=[f"{len(headers)} distinct {ALG} tokens of {len(setup.tokens[0])} bytes"],
            after=no_io_guard([issuer]),
        )
        setup.server.close()


def _wsgi_group(settings: Settings, make: Callable[[], Any], label: str) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        setup = _Setup(issuer, settings)
        bare = make()
        guarded = BearerAuthWSGIMiddleware(make(), setup.server)
        minimal = minimal_wsgi_guard(make(), setup.verifier)
        headers = [f"Bearer {token}" for token in setup.tokens]
        names = (
            f"bare {label}",
            "BearerAuthWSGIMiddleware, hit",
            "BearerAuthWSGIMiddleware, miss",
            "minimal guard (reference.py)",
        )
        cases = [
            Case(names[0], wsgi_caller(bare, "/orders"), headers),
            Case(names[1], wsgi_caller(guarded, "/orders"), headers),
            Case(names[2], wsgi_caller(guarded, "/orders"), headers, reset=setup.forget),
            Case(names[3], wsgi_caller(minimal, "/orders"), headers),
        ]
        yield Group(
            cases=cases,
            checks=_checks(names[0], names[1], names[2], names[3]),
            notes=[f"{len(headers)} distinct {ALG} tokens of {len(setup.tokens[0])} bytes"],
            after=no_io_guard([issuer]),
        )
        setup.server.close()


@register("wsgi.plain", "A plain WSGI function: bare versus BearerAuthWSGIMiddleware, hit, miss.")
def _plain(settings: Settings) -> Iterator[Group]:
    yield from _wsgi_group(settings, lambda: plain_wsgi, "WSGI function")


@register("wsgi.flask", "Flask through WSGI: bare versus BearerAuthWSGIMiddleware, hit, miss.")
def _flask(settings: Settings) -> Iterator[Group]:
    yield from _wsgi_group(settings, flask_app, "Flask app")
