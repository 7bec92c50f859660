"""Per-request cost in process: a bare app versus the same app behind bearerguard's middleware.

ASGI (Starlette, FastAPI) and WSGI (a plain function, Flask), each called directly (apps.py), with
RS256 tokens: a cache hit (the token verified before, by a server whose cache is full) and a miss
(a stream of never-seen tokens through a full, evicting cache), next to a minimal hand-written
guard on the minimal verifier keeping its results (hit and miss alike). Budgets (design.md): an
ASGI hit at most 1.25 x a bare Starlette request; FastAPI's `requires()` on a hit within 1.10 x
the same route behind FastAPI's own `HTTPBearer` dependency.
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
    fastapi_app,
    flask_app,
    minimal_wsgi_guard,
    plain_wsgi,
    starlette_app,
    wsgi_caller,
)
from common import (
    AUDIENCE,
    Held,
    ServerCache,
    config,
    filled,
    minimal_verifier,
    mint,
    no_io_guard,
    stream_check,
    warmed,
)
from harness import Case, Check, Delta, Group, Pair, Settings, register

from bearerguard import ResourceServer
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

ALG = "RS256"
ASGI_HIT_BUDGET = 1.25  # design.md: a hit at most 1.25 x a bare Starlette request in process
FASTAPI_BUDGET = 1.10  # a requires() route on a hit within 1.10 x the HTTPBearer route


class _Setup:
    """The issuer, a stream of never-seen tokens, two warmed servers (`hit`: its cache full of the
    stream's first tokens; `miss`: fed the stream) and the minimal verifier, keeping, likewise."""

    def __init__(self, issuer: LocalIssuer, settings: Settings) -> None:
        self.settings = settings
        size = settings.cache_size
        self.tokens = mint(issuer, ALG, settings.stream_size())
        self.hit: ResourceServer = warmed(config(issuer, ALG), token_cache_size=size)
        self.miss: ResourceServer = warmed(config(issuer, ALG), token_cache_size=size)
        self.hit_tokens = filled(self.hit, self.tokens, settings, size)

        self.minimal_hit = minimal_verifier(issuer, ALG, keep=size)
        self.minimal_miss = minimal_verifier(issuer, ALG, keep=size)
        for token in self.tokens[:size]:
            self.minimal_hit.check(token)
        self.checks: list[Callable[[], list[str]]] = []

    def hit_case(self, name: str, call: Callable[[Any], Any], encode: bool) -> Case:
        return Case(name, call, [_header(t, encode) for t in self.hit_tokens])

    def miss_case(self, name: str, call: Callable[[Any], Any], encode: bool, cache: Held) -> Case:
        """A stream of never-seen tokens through `cache` (the miss server's, or the minimal
        verifier's kept results), checked after measuring."""
        headers = [_header(t, encode) for t in self.tokens]
        case = Case(name, call, headers, per_round=self.settings.per_round())
        # The stream check looks the tokens up: give it the tokens, not the headers.
        shadow = Case(name, call, self.tokens, per_round=case.per_round)
        self.checks.append(_follow(case, shadow, cache, self.settings.cache_size))
        return case

    def after(self, issuer: LocalIssuer) -> Callable[[], list[str]]:
        io_check = no_io_guard([issuer])
        return lambda: [line for check in self.checks for line in check()] + io_check()

    def close(self) -> None:
        self.hit.close()
        self.miss.close()


def _header(token: str, encode: bool) -> str | bytes:
    value = f"Bearer {token}"
    return value.encode() if encode else value


def _follow(case: Case, shadow: Case, cache: Held, capacity: int) -> Callable[[], list[str]]:
    def check() -> list[str]:
        shadow.cursor = case.cursor
        return stream_check(shadow, cache, capacity)()

    return check


def _checks(bare: str, hit: str, miss: str, minimal_hit: str, minimal_miss: str) -> list[Check]:
    return [
        Delta("hit: middleware - bare app", hit, bare),
        Pair("hit: middleware / minimal guard, keeping (both hits)", hit, minimal_hit),
        # What the least a guard does costs over the same app (the reference's own hit line).
        Pair("hit: minimal guard, keeping / bare app", minimal_hit, bare),
        Delta("miss: middleware - bare app", miss, bare),
        Delta("minimal guard, keeping, miss - bare app", minimal_miss, bare),
        Pair(
            "miss: middleware / minimal guard, keeping (both with the app)",
            miss,
            minimal_miss,
            mean=True,
        ),
    ]


@register("asgi.starlette", "Starlette through ASGI: bare versus BearerAuthMiddleware, hit, miss.")
def _starlette(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        setup = _Setup(issuer, settings)
        bare = starlette_app(guarded=False)
        hit = BearerAuthMiddleware(starlette_app(guarded=True), server=setup.hit)
        miss = BearerAuthMiddleware(starlette_app(guarded=True), server=setup.miss)
        minimal_hit = MinimalGuard(starlette_app(guarded=False), setup.minimal_hit)
        minimal_miss = MinimalGuard(starlette_app(guarded=False), setup.minimal_miss)
        header = _header(setup.hit_tokens[0], encode=True)
        assert isinstance(header, bytes)
        for app, path in ((bare, "/orders"), (hit, "/orders"), (hit, "/scoped")):
            status = asyncio.run(asgi_status(app, path, header))
            assert status == 200, f"{path}: {status}"
        names = (
            "bare Starlette app",
            "BearerAuthMiddleware, hit",
            "BearerAuthMiddleware + requires(), hit",
            "BearerAuthMiddleware, miss",
            "minimal guard, keeping, hit (reference.py)",
            "minimal guard, keeping, miss (reference.py)",
            "a middleware that does nothing",
        )
        cases = [
            setup.hit_case(names[0], asgi_caller(bare, "/orders"), encode=True),
            setup.hit_case(names[1], asgi_caller(hit, "/orders"), encode=True),
            setup.hit_case(names[2], asgi_caller(hit, "/scoped"), encode=True),
            setup.miss_case(names[3], asgi_caller(miss, "/orders"), True, ServerCache(setup.miss)),
            setup.hit_case(names[4], asgi_caller(minimal_hit, "/orders"), encode=True),
            setup.miss_case(
                names[5], asgi_caller(minimal_miss, "/orders"), True, setup.minimal_miss.kept
            ),
            setup.hit_case(names[6], asgi_caller(PassThrough(bare), "/orders"), encode=True),
        ]
        yield Group(
            cases=cases,
            checks=[
                Pair("hit: middleware / bare app", names[1], names[0], ASGI_HIT_BUDGET),
                Pair("hit: middleware + requires() / bare app", names[2], names[0]),
                *_checks(names[0], names[1], names[3], names[4], names[5]),
                Delta("hit: middleware + requires() - bare app", names[2], names[0]),
                Delta("a middleware that does nothing - bare app", names[6], names[0]),
            ],
            notes=[f"{len(setup.tokens)} distinct {ALG} tokens of {len(setup.tokens[0])} bytes"],
            after=setup.after(issuer),
        )
        setup.close()


@register(
    "asgi.fastapi",
    "FastAPI: a route behind auth.requires() on a hit versus FastAPI's own HTTPBearer dependency.",
)
def _fastapi(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        setup = _Setup(issuer, settings)
        app = fastapi_app(setup.hit, setup.minimal_hit)
        header = _header(setup.hit_tokens[0], encode=True)
        assert isinstance(header, bytes)
        paths = ("/bare", "/noop", "/httpbearer", "/requires", "/minimal")
        for path in paths:
            status = asyncio.run(asgi_status(app, path, header))
            assert status == 200, f"{path}: {status}"
        names = (
            "FastAPI route, no dependency",
            "FastAPI route, a dependency that does nothing",
            "FastAPI route, Security(HTTPBearer()) (FastAPI's own bearer dependency)",
            "FastAPI route, auth.requires('orders.read'), hit",
            "FastAPI route, minimal dependency on the minimal verifier, keeping, hit",
        )
        cases = [
            setup.hit_case(name, asgi_caller(app, path), encode=True)
            for name, path in zip(names, paths, strict=True)
        ]
        yield Group(
            cases=cases,
            checks=[
                Pair("hit: requires() / HTTPBearer route", names[3], names[2], FASTAPI_BUDGET),
                Pair("hit: requires() / route without a dependency", names[3], names[0]),
                Pair("hit: requires() / minimal dependency, keeping", names[3], names[4]),
                Delta("hit: requires() - HTTPBearer route", names[3], names[2]),
                Delta("HTTPBearer route - route without a dependency", names[2], names[0]),
                Delta("a dependency that does nothing - no dependency", names[1], names[0]),
            ],
            notes=[
                f"{len(setup.hit_tokens)} distinct {ALG} tokens of {len(setup.tokens[0])} bytes,"
                " no middleware in front (the dependency verifies, on a hit: looks up the cache)"
            ],
            after=setup.after(issuer),
        )
        setup.close()


def _wsgi_group(settings: Settings, make: Callable[[], Any], label: str) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        setup = _Setup(issuer, settings)
        bare = make()
        hit = BearerAuthWSGIMiddleware(make(), setup.hit)
        miss = BearerAuthWSGIMiddleware(make(), setup.miss)
        minimal_hit = minimal_wsgi_guard(make(), setup.minimal_hit)
        minimal_miss = minimal_wsgi_guard(make(), setup.minimal_miss)
        names = (
            f"bare {label}",
            "BearerAuthWSGIMiddleware, hit",
            "BearerAuthWSGIMiddleware, miss",
            "minimal guard, keeping, hit (reference.py)",
            "minimal guard, keeping, miss (reference.py)",
        )
        cases = [
            setup.hit_case(names[0], wsgi_caller(bare, "/orders"), encode=False),
            setup.hit_case(names[1], wsgi_caller(hit, "/orders"), encode=False),
            setup.miss_case(names[2], wsgi_caller(miss, "/orders"), False, ServerCache(setup.miss)),
            setup.hit_case(names[3], wsgi_caller(minimal_hit, "/orders"), encode=False),
            setup.miss_case(
                names[4], wsgi_caller(minimal_miss, "/orders"), False, setup.minimal_miss.kept
            ),
        ]
        yield Group(
            cases=cases,
            checks=[
                Pair("hit: middleware / bare app", names[1], names[0]),
                *_checks(names[0], names[1], names[2], names[3], names[4]),
            ],
            notes=[f"{len(setup.tokens)} distinct {ALG} tokens of {len(setup.tokens[0])} bytes"],
            after=setup.after(issuer),
        )
        setup.close()


@register("wsgi.plain", "A plain WSGI function: bare versus BearerAuthWSGIMiddleware, hit, miss.")
def _plain(settings: Settings) -> Iterator[Group]:
    yield from _wsgi_group(settings, lambda: plain_wsgi, "WSGI function")


@register("wsgi.flask", "Flask through WSGI: bare versus BearerAuthWSGIMiddleware, hit, miss.")
def _flask(settings: Settings) -> Iterator[Group]:
    yield from _wsgi_group(settings, flask_app, "Flask app")
