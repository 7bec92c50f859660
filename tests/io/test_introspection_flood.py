"""Random-token floods (issue 13, defect 5) against a real authorization server on 127.0.0.1.

The AS is protected from us: a JWT is never introspected unless asked for, unseen tokens are
introspected within a bound on calls (at once and a second; above it a 503 with Retry-After
while cached tokens keep working), and a flood cannot push cached answers out.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bearerguard import (
    AccessToken,
    Introspection,
    InvalidTokenError,
    Issuer,
    Reason,
    ResourceServer,
    UpstreamUnavailableError,
    challenge_for,
)
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import LocalIssuer

from ..conftest import FakeClock, Twin
from ..integrations.mcp_support import free_port, serve

Factory = Callable[..., LocalIssuer]


def bearer(token: str) -> str:
    return "Bearer " + token


def server_for(
    at: LocalIssuer, clock: FakeClock | None = None, /, *, issuers: Any = (), **kw: Any
) -> ResourceServer:
    options: dict[str, Any] = {
        "endpoint": at.introspection_endpoint,
        "client_id": "test-client",
        "client_secret": "test-secret",
    }
    times: dict[str, Any] = {} if clock is None else {"clock": clock.time, "timer": clock.monotonic}
    return ResourceServer(issuers, introspection=Introspection(**(options | kw)), **times)


def random_token() -> str:
    return secrets.token_urlsafe(32)


def outcome(twin: Twin, server: ResourceServer, token: str) -> AccessToken | Exception:
    try:
        return twin.authenticate(server, bearer(token))
    except (InvalidTokenError, UpstreamUnavailableError) as exc:
        return exc


@pytest.fixture
def timed(local_issuer_factory: Factory, clock: FakeClock) -> LocalIssuer:
    return local_issuer_factory(clock=clock.time)


# -- which tokens go to the AS ------------------------------------------------------------------


def _segment(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def with_raw_payload(token: str, payload: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_segment(payload.encode())}.{signature}"


@pytest.mark.parametrize("foreign", [False, True])
def test_jws_failing_any_check_is_refused_locally_never_introspected(
    local_issuer_factory: Factory, twin: Twin, foreign: bool
) -> None:
    jwts, opaque = local_issuer_factory(), local_issuer_factory()
    issuer = Issuer(issuer=jwts.issuer, audience=jwts.audience)
    server = server_for(opaque, issuers=issuer, introspect_foreign_jwts=foreign)
    claims = json.dumps({"iss": jwts.issuer, "aud": jwts.audience, "exp": 4_000_000_000})
    duplicate = claims[:-1] + f', "iss": "{opaque.issuer}"}}'  # a duplicate member
    refused = {
        with_raw_payload(jwts.mint(), duplicate): Reason.MALFORMED,
        with_raw_payload(opaque.mint(), duplicate): Reason.MALFORMED,  # whose it is is unclear
        with_raw_payload(opaque.mint(), '{"iss": NaN}'): Reason.MALFORMED,
        jwts.mint(headers={"jku": opaque.jwks_uri}): Reason.UNSUPPORTED_HEADER,
        opaque.mint(headers={"x5u": opaque.jwks_uri}): Reason.UNSUPPORTED_HEADER,
        jwts.mint(audience="urn:another-api"): Reason.AUDIENCE,
        jwts.mint(expires_in=-3600): Reason.EXPIRED,
        jwts.mint()[:-4] + "AAAA": Reason.BAD_SIGNATURE,
    }
    if not foreign:
        refused[opaque.mint()] = Reason.UNKNOWN_ISSUER
    for token, reason in refused.items():
        with pytest.raises(InvalidTokenError) as info:
            twin.authenticate(server, bearer(token))
        assert info.value.reason is reason
    assert opaque.count() == 0 and jwts.count("introspect") == 0
    # What still goes to the AS: opaque strings (dotted ones too), and with the option a JWT of
    # an issuer not configured here.
    dotted = opaque.mint_opaque(token="a.b.c", scope="o")
    assert twin.authenticate(server, bearer(dotted)).source == "introspection"
    assert opaque.count("introspect") == 1
    if foreign:
        access = twin.authenticate(server, bearer(opaque.mint(scope="f")))
        assert access.source == "introspection" and access.scopes == {"f"}
        assert opaque.count("introspect") == 2


# -- the bound on calls -------------------------------------------------------------------------


def test_rate_bound_then_503_with_retry_after_while_cached_tokens_work(
    timed: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(timed, clock, max_calls_per_second=10)
    known = timed.mint_opaque(scope="known")
    assert twin.authenticate(server, bearer(known)).scopes == {"known"}  # one call of ten
    results = [outcome(twin, server, random_token()) for _ in range(100)]
    refusals = [r for r in results if isinstance(r, InvalidTokenError)]
    busy = [r for r in results if isinstance(r, UpstreamUnavailableError)]
    assert len(refusals) == 9 and len(busy) == 91  # the bucket held ten calls
    assert timed.count("introspect") == 10
    assert {exc.retry_after for exc in busy} == {1.0}
    rendered = challenge_for(busy[0])
    assert (rendered.status, rendered.header("retry-after")) == (503, "1")
    assert rendered.header("www-authenticate") is None
    assert twin.authenticate(server, bearer(known)).scopes == {"known"}  # cached: still fine
    for refused in refusals[:3]:  # and cached refusals are still refusals, not 503s
        assert refused.reason is Reason.INACTIVE
    fresh = timed.mint_opaque(scope="fresh")
    with pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, bearer(fresh))
    clock.advance(0.5)  # half a second refills five calls
    assert twin.authenticate(server, bearer(fresh)).scopes == {"fresh"}
    assert timed.count("introspect") == 11


def test_concurrency_bound_threads(local_issuer: LocalIssuer) -> None:
    local_issuer.set_delay(1.0)
    known = local_issuer.mint_opaque(scope="known")
    barrier = threading.Barrier(30)
    with server_for(local_issuer, max_concurrent_calls=5) as server:
        local_issuer.set_delay(0)
        server.authenticate(bearer(known))
        local_issuer.set_delay(1.0)

        def flood(_: int) -> AccessToken | Exception:
            barrier.wait()
            try:
                return server.authenticate(bearer(random_token()))
            except (InvalidTokenError, UpstreamUnavailableError) as exc:
                return exc

        with ThreadPoolExecutor(30) as pool:
            futures = [pool.submit(flood, i) for i in range(30)]
            # While five calls hang at the AS: the cached token is answered, a new one is 503.
            _wait_until(lambda: local_issuer.count("introspect") >= 6)
            assert server.authenticate(bearer(known)).scopes == {"known"}
            with pytest.raises(UpstreamUnavailableError) as info:
                server.authenticate(bearer(local_issuer.mint_opaque()))
            assert info.value.retry_after == 1.0
            results = [f.result() for f in futures]
    busy = [r for r in results if isinstance(r, UpstreamUnavailableError)]
    assert len(busy) == 25 and all(r.retry_after == 1.0 for r in busy)
    assert local_issuer.count("introspect") == 1 + 5


def test_concurrency_bound_tasks(local_issuer: LocalIssuer) -> None:
    known = local_issuer.mint_opaque(scope="known")

    async def main() -> list[AccessToken | BaseException]:
        async with server_for(local_issuer, max_concurrent_calls=5) as server:
            await server.aauthenticate(bearer(known))
            local_issuer.set_delay(1.0)
            flood = [
                asyncio.ensure_future(server.aauthenticate(bearer(random_token())))
                for _ in range(30)
            ]
            await asyncio.sleep(0.2)  # the first five are at the AS now
            assert (await server.aauthenticate(bearer(known))).scopes == {"known"}
            with pytest.raises(UpstreamUnavailableError):
                await server.aauthenticate(bearer(local_issuer.mint_opaque()))
            return await asyncio.gather(*flood, return_exceptions=True)

    results = asyncio.run(main())
    busy = [r for r in results if isinstance(r, UpstreamUnavailableError)]
    inactive = [r for r in results if isinstance(r, InvalidTokenError)]
    assert (len(busy), len(inactive)) == (25, 5)
    assert local_issuer.count("introspect") == 1 + 5


def test_slots_are_given_back_when_calls_fail(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = server_for(local_issuer, max_concurrent_calls=1)
    local_issuer.fail_next(3)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailableError):
            twin.authenticate(server, bearer(random_token()))
    assert twin.authenticate(server, bearer(local_issuer.mint_opaque(scope="s"))).scopes == {"s"}
    assert server._introspector is not None and server._introspector.limit.in_flight == 0


# -- a flood cannot push cached answers out -----------------------------------------------------


def test_flood_of_random_tokens_is_bounded_and_keeps_cached_answers(
    timed: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    # Defaults but for a small cache: the flood is many times the cache. The timer stands
    # still, so the bound is the bucket (50 calls) however long the flood takes.
    server = server_for(timed, clock, cache_size=200)
    legit = [timed.mint_opaque(scope=f"s{i}") for i in range(100)]
    for token in legit * 2:  # in use: each seen twice
        twin.authenticate(server, bearer(token))
        clock.advance(0.05)  # within the rate bound
    assert timed.count("introspect") == 100
    clock.advance(1.0)  # the bucket is full again
    for _ in range(1_000):
        outcome(twin, server, random_token())
    assert timed.count("introspect") - 100 <= 50  # at most the bound of calls
    answered = [twin.authenticate(server, bearer(token)).scopes for token in legit]
    assert answered == [{f"s{i}"} for i in range(100)]
    assert timed.count("introspect") - 100 <= 50  # all from the cache: none evicted


def test_refusals_never_take_the_place_of_answers(
    timed: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    # No rate bound to speak of: every random token is introspected and its refusal cached.
    server = server_for(timed, clock, cache_size=100, max_calls_per_second=1e9)
    legit = [timed.mint_opaque(scope=f"s{i}") for i in range(50)]
    for token in legit:  # seen once only: in probation, still kept
        twin.authenticate(server, bearer(token))
    for _ in range(400):
        assert isinstance(outcome(twin, server, random_token()), InvalidTokenError)
    assert timed.count("introspect") == 450
    assert [twin.authenticate(server, bearer(t)).scopes for t in legit] == [
        {f"s{i}"} for i in range(50)
    ]
    assert timed.count("introspect") == 450


def test_flood_of_fresh_jwts_keeps_hit_entries_of_the_verified_token_cache(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    issuer = Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience)
    server = ResourceServer(issuer, token_cache_size=50)
    hot = [local_issuer.mint(scope=f"h{i}") for i in range(20)]
    first = [twin.authenticate(server, bearer(token)) for token in hot]
    assert [twin.authenticate(server, bearer(t)) for t in hot] == first  # hit: promoted
    for _ in range(300):  # a client that fetches a new token for every request
        twin.authenticate(server, bearer(local_issuer.mint()))
    for token, cached in zip(hot, first, strict=True):
        assert twin.authenticate(server, bearer(token)) is cached  # the same object: a hit


def test_over_the_bound_uvicorn_answers_503_with_retry_after(local_issuer: LocalIssuer) -> None:
    # The whole way: uvicorn on 127.0.0.1, the ASGI middleware, the AS on 127.0.0.1.
    server = server_for(local_issuer, max_calls_per_second=0.01)  # one call per 100 s
    app = Starlette(routes=[Route("/", lambda _: PlainTextResponse("ok"))])
    app.add_middleware(BearerAuthMiddleware, server=server)
    known = local_issuer.mint_opaque(scope="s")
    with serve(app, free_port()) as url, httpx.Client(base_url=url) as client:
        assert client.get("/", headers={"authorization": bearer(known)}).status_code == 200
        busy = client.get("/", headers={"authorization": bearer(random_token())})
        assert busy.status_code == 503
        assert 90 <= int(busy.headers["retry-after"]) <= 100  # when the bucket has a call
        assert "www-authenticate" not in busy.headers
        assert busy.json() == {
            "error": "temporarily_unavailable",
            "error_description": "The authorization server could not be reached.",
        }
        assert client.get("/", headers={"authorization": bearer(known)}).status_code == 200
    assert local_issuer.count("introspect") == 1
    server.close()


def _wait_until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Synchronise with other threads (not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "never got there"
        time.sleep(0.005)
