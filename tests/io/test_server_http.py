"""ResourceServer against a real issuer on 127.0.0.1: discovery, rotation, outages, single flight.

Tokens carry real times; a fake monotonic timer ages the key cache where a test needs it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bearerguard import (
    AccessToken,
    InvalidTokenError,
    Issuer,
    JWKSPolicy,
    Reason,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard.testing import LocalIssuer

from ..conftest import FakeClock, Twin

Factory = Callable[..., LocalIssuer]
POLICY = JWKSPolicy(min_refetch_interval=10, stale_if_error=600)


def server_for(issuer: LocalIssuer, timer: FakeClock | None = None, **kw: Any) -> ResourceServer:
    options = {"jwks_policy": POLICY} | kw
    config = Issuer(issuer=issuer.issuer, audience=issuer.audience, **options)
    if timer is None:
        return ResourceServer(config)
    return ResourceServer(config, timer=timer.monotonic)


def bearer(token: str) -> str:
    return "Bearer " + token


def test_discovery_then_jwks_then_no_more_requests(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = server_for(local_issuer)
    for alg in ("RS256", "PS256", "ES256", "EdDSA"):
        token = twin.authenticate(server, bearer(local_issuer.mint(alg=alg, scope="a b")))
        assert token.scopes == {"a", "b"}
        assert token.issuer == local_issuer.issuer
    assert local_issuer.count("openid-configuration") == 1
    assert local_issuer.count("oauth-authorization-server") == 0
    assert local_issuer.count("jwks") == 1


def test_discovery_falls_back_to_rfc8414(local_issuer_factory: Factory, twin: Twin) -> None:
    issuer = local_issuer_factory(discovery="oauth", path="/tenant-a")
    server = server_for(issuer)
    twin.authenticate(server, bearer(issuer.mint()))
    assert issuer.count("openid-configuration") == 1  # tried first: 404
    assert issuer.count("oauth-authorization-server") == 1
    assert issuer.count("jwks") == 1


def test_configured_jwks_uri_skips_discovery(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = server_for(local_issuer, jwks_uri=local_issuer.jwks_uri)
    twin.authenticate(server, bearer(local_issuer.mint()))
    assert local_issuer.count() == local_issuer.count("jwks") == 1


def test_unknown_issuer_is_refused_without_network(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = server_for(local_issuer)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(local_issuer.mint(issuer="https://evil.test")))
    assert info.value.reason is Reason.UNKNOWN_ISSUER
    assert local_issuer.count() == 0


def test_key_rotation_and_retirement(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(local_issuer, timer=clock)
    old_kid = local_issuer.kid("RS256")
    old_token = local_issuer.mint()
    cached = twin.authenticate(server, bearer(old_token))
    assert local_issuer.count("jwks") == 1

    clock.advance(11)
    new_kid = local_issuer.rotate("RS256", keep_old=True)
    twin.authenticate(server, bearer(local_issuer.mint(kid=new_kid)))
    assert local_issuer.count("jwks") == 2  # exactly one refetch for the new kid
    twin.authenticate(server, bearer(local_issuer.mint(kid=old_kid)))  # still published
    assert twin.authenticate(server, bearer(old_token)) is cached  # verified-token cache hit
    assert local_issuer.count("jwks") == 2

    # The old key leaves the JWKS: after the next refresh, tokens it signed are refused,
    # even the one sitting in the verified-token cache.
    local_issuer.retire(old_kid)
    clock.advance(301)  # past the JWKS TTL (Cache-Control: max-age=300)
    twin.authenticate(server, bearer(local_issuer.mint(kid=new_kid)))
    assert local_issuer.count("jwks") == 3
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(old_token))
    assert info.value.reason is Reason.UNKNOWN_KID


def test_random_kid_flood_costs_at_most_one_fetch_per_cool_down(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(local_issuer, timer=clock)
    twin.authenticate(server, bearer(local_issuer.mint()))

    def flood(n: int) -> None:
        for _ in range(n):
            forged = local_issuer.mint(headers={"kid": secrets.token_hex(8)})
            with pytest.raises(InvalidTokenError) as info:
                twin.authenticate(server, bearer(forged))
            assert info.value.reason is Reason.UNKNOWN_KID

    clock.advance(5)
    flood(50)
    assert local_issuer.count("jwks") == 1  # inside the cool-down: no fetch at all
    clock.advance(6)
    flood(50)
    assert local_issuer.count("jwks") == 2  # one fetch for the whole flood
    clock.advance(10)
    flood(50)
    assert local_issuer.count("jwks") == 3


def test_cold_cache_50_threads_one_fetch(local_issuer: LocalIssuer) -> None:
    local_issuer.set_delay(0.2)  # keep the first fetch in flight while the others arrive
    server = server_for(local_issuer)
    tokens = [local_issuer.mint(scope=f"s{i}") for i in range(50)]
    barrier = threading.Barrier(50)

    def call(token: str) -> AccessToken:
        barrier.wait()
        return server.authenticate(bearer(token))

    with server, ThreadPoolExecutor(50) as pool:
        results = list(pool.map(call, tokens))
    assert [r.scopes for r in results] == [{f"s{i}"} for i in range(50)]
    assert local_issuer.count("openid-configuration") == 1
    assert local_issuer.count("jwks") == 1


def test_cold_cache_50_tasks_one_fetch(local_issuer: LocalIssuer) -> None:
    local_issuer.set_delay(0.2)
    tokens = [local_issuer.mint(scope=f"s{i}") for i in range(50)]

    async def main() -> list[AccessToken]:
        async with server_for(local_issuer) as server:
            return await asyncio.gather(*(server.aauthenticate(bearer(t)) for t in tokens))

    results = asyncio.run(main())
    assert [r.scopes for r in results] == [{f"s{i}"} for i in range(50)]
    assert local_issuer.count("openid-configuration") == 1
    assert local_issuer.count("jwks") == 1


def test_issuer_down_stale_keys_serve_inside_the_window_then_503(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(local_issuer, timer=clock)  # TTL 300 (max-age), stale_if_error 600
    first = local_issuer.mint()
    twin.authenticate(server, bearer(first))

    local_issuer.go_down("error", status=503)
    clock.advance(400)  # keys past their TTL; the refresh fails
    twin.authenticate(server, bearer(local_issuer.mint()))
    assert local_issuer.count("jwks") == 2
    clock.advance(450)  # 850 s: still inside TTL + stale_if_error
    twin.authenticate(server, bearer(local_issuer.mint()))
    twin.authenticate(server, bearer(first))
    status = server.status()[0]
    assert status.usable and not status.fresh and status.last_error is not None

    clock.advance(60)  # 910 s: the window is over
    for token in (local_issuer.mint(), first):
        with pytest.raises(UpstreamUnavailableError) as info:
            twin.authenticate(server, bearer(token))
        assert info.value.retry_after is not None and info.value.retry_after >= 1

    local_issuer.come_back()
    clock.advance(10)
    twin.authenticate(server, bearer(first))
    assert server.status()[0].fresh


@pytest.mark.parametrize("mode", ["refuse", "error"])
def test_issuer_down_at_start_up_then_recovers_by_itself(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock, mode: Any
) -> None:
    server = server_for(local_issuer, timer=clock)
    token = local_issuer.mint()
    local_issuer.go_down(mode)
    with pytest.raises(UpstreamUnavailableError) as info:
        twin.authenticate(server, bearer(token))
    assert info.value.retry_after == 10
    assert server.status()[0].last_error

    local_issuer.come_back()
    with pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, bearer(token))  # still cooling down: the issuer is not asked
    clock.advance(10)
    assert twin.authenticate(server, bearer(token)).client_id == "test-client"


@pytest.mark.parametrize(
    "fault",
    [
        lambda i: i.fail_next(2, status=500),
        lambda i: i.set_jwks_body(b"<html>maintenance</html>"),
        lambda i: i.set_jwks_body(b'{"keys": [], "keys": []}'),
        lambda i: i.set_jwks_body(b'{"keys": 5}'),
        lambda i: i.set_jwks_body(b"x" * 600_000),
    ],
)
def test_broken_jwks_answers_are_503_not_401(
    local_issuer: LocalIssuer, twin: Twin, fault: Callable[[LocalIssuer], None]
) -> None:
    fault(local_issuer)
    server = server_for(local_issuer, jwks_uri=local_issuer.jwks_uri)
    with pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, bearer(local_issuer.mint()))


def test_slow_issuer_times_out_as_503(local_issuer: LocalIssuer, twin: Twin) -> None:
    local_issuer.set_delay(1.0)
    server = ResourceServer(
        Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience), timeout=0.2
    )
    with pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, bearer(local_issuer.mint()))
    assert "Timeout" in (server.status()[0].last_error or "")


def test_warm_fetches_ahead_and_reports(local_issuer: LocalIssuer, clock: FakeClock) -> None:
    with server_for(local_issuer, timer=clock) as server:
        (status,) = server.warm()
        assert status.fresh and status.jwks_uri == local_issuer.jwks_uri
        assert local_issuer.count("jwks") == 1
        server.authenticate(bearer(local_issuer.mint()))
        assert local_issuer.count("jwks") == 1


def test_awarm_reports_a_down_issuer_without_raising(local_issuer: LocalIssuer) -> None:
    local_issuer.go_down("refuse")

    async def main() -> None:
        async with server_for(local_issuer) as server:
            (status,) = await server.awarm()
            assert not status.usable and status.last_error

    asyncio.run(main())


def test_verified_token_cache_never_serves_past_exp(
    local_issuer_factory: Factory, twin: Twin, clock: FakeClock
) -> None:
    issuer = local_issuer_factory(clock=clock.time)
    server = ResourceServer(
        Issuer(issuer=issuer.issuer, audience=issuer.audience, leeway=0),
        clock=clock.time,
        timer=clock.monotonic,
    )
    token = issuer.mint(expires_in=60)
    first = twin.authenticate(server, bearer(token))
    clock.advance(59)
    assert twin.authenticate(server, bearer(token)) is first
    assert twin.verify(server, token) is first  # both entry points answer from the cache
    clock.advance(1)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(token))
    assert info.value.reason is Reason.EXPIRED


def test_access_token_claims_are_read_only(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = server_for(local_issuer)
    token = twin.authenticate(
        server, bearer(local_issuer.mint(realm_access={"roles": ["a"]}, aud_list=["x"]))
    )
    with pytest.raises(TypeError):
        token.claims["sub"] = "someone-else"  # type: ignore[index]
    with pytest.raises(TypeError):
        token.claims["realm_access"]["roles"] = ["admin"]
    assert token.claims["aud_list"] == ("x",)
    with pytest.raises(AttributeError):
        token.scopes.add("admin")  # type: ignore[attr-defined]


def test_same_kid_republished_with_another_key_ends_cached_tokens(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    # A cached verification is tied to the key object, not just its kid: an issuer that reuses
    # a kid for new key material invalidates every token the old material signed.
    server = server_for(local_issuer, timer=clock)
    token = local_issuer.mint()
    twin.authenticate(server, bearer(token))
    kid = local_issuer.kid("RS256")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new_jwk = RSAAlgorithm.to_jwk(other.public_key(), as_dict=True) | {"kid": kid, "use": "sig"}
    local_issuer.set_jwks_body(json.dumps({"keys": [new_jwk]}).encode())
    clock.advance(301)  # past the JWKS TTL: the next request refreshes the keys
    claims = {"iss": local_issuer.issuer, "aud": local_issuer.audience, "exp": time.time() + 60}
    fresh = jwt.encode(claims, other, algorithm="RS256", headers={"kid": kid})
    twin.authenticate(server, bearer(fresh))  # signed by the new material: the refresh
    assert local_issuer.count("jwks") == 2
    # The old token is still in the cache, under a kid that is still published: not enough.
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(token))
    assert info.value.reason is Reason.BAD_SIGNATURE  # re-verified against the new material


@pytest.mark.parametrize(
    "extra",
    [
        {},  # flat: read off the JSON text, copied in one step
        {"note": "[not an array] {nor an object}"},  # brackets inside a string: still flat
        {"roles": ["a", "b"], "realm_access": {"roles": ["x"]}, "aud2": [["n"]]},
    ],
)
def test_verified_claims_are_read_only_all_the_way_down(
    local_issuer: LocalIssuer, twin: Twin, extra: dict[str, Any]
) -> None:
    server = server_for(local_issuer)
    token = twin.authenticate(server, bearer(local_issuer.mint(**extra)))
    for name, value in extra.items():
        assert _thawed(token.claims[name]) == value
    with pytest.raises(TypeError):
        token.claims["sub"] = "someone else"  # type: ignore[index]
    for value in token.claims.values():
        assert not isinstance(value, dict | list)  # proxies and tuples only
        if isinstance(value, tuple | MappingProxyType):
            _assert_frozen(value)


def _thawed(value: Any) -> Any:
    if isinstance(value, MappingProxyType):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


def _assert_frozen(value: Any) -> None:
    inner = value.values() if isinstance(value, MappingProxyType) else value
    for item in inner:
        assert not isinstance(item, dict | list)
        if isinstance(item, tuple | MappingProxyType):
            _assert_frozen(item)
