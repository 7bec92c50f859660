"""`ResourceServer(store=RedisStore(...))` against a real redis-server and a real LocalIssuer.

Replicas are `ResourceServer`s in one process, each with its own `RedisStore` on the same Redis
(as separate processes would have): what they share goes through Redis alone. The LocalIssuer
counts the introspection calls the fleet makes; faults go through the relay (cut: Redis down,
paused: Redis hanging) or straight to Redis (flushed, values tampered with).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bearerguard import (
    AccessToken,
    Credentials,
    DPoPPolicy,
    Introspection,
    InvalidDPoPProofError,
    InvalidTokenError,
    Issuer,
    Reason,
    ResourceServer,
    RoleResolver,
    UpstreamUnavailableError,
)
from bearerguard._codec import encode
from bearerguard._introspection import token_key
from bearerguard._store import LOCK, MemoryStore, TieredStore
from bearerguard.redis import RedisStore
from bearerguard.testing import DPoPKey, LocalIssuer

from ..conftest import FakeClock, Twin
from .conftest import SECRET, RedisServer, Relay

Factory = Callable[..., LocalIssuer]


class Fleet:
    """Makes replicas (servers with a RedisStore of their own each) and closes them all."""

    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.stores: list[RedisStore] = []

    def store(self, url: str, **options: Any) -> RedisStore:
        store = RedisStore(url, secret=SECRET, **({"timeout": 2.0} | options))
        self.stores.append(store)
        return store

    def replica(
        self,
        at: LocalIssuer,
        url: str,
        *,
        store: Any = None,
        clock: FakeClock | None = None,
        **introspection: Any,
    ) -> ResourceServer:
        times: dict[str, Any] = {} if clock is None else {"clock": clock.time}
        config = Introspection(
            endpoint=at.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
            allow_http=True,
            **introspection,
        )
        return ResourceServer(
            introspection=config, store=self.store(url) if store is None else store, **times
        )

    def close(self) -> None:
        for store in self.stores:
            store.close()
            if self.twin.portal is not None:
                self.twin.portal.call(store.aclose)


@pytest.fixture
def fleet(twin: Twin, redis_db: redis.Redis) -> Iterator[Fleet]:
    fleet = Fleet(twin)
    yield fleet
    fleet.close()


def bearer(token: str) -> str:
    return "Bearer " + token


# -- one AS call for the fleet -----------------------------------------------------------------


def test_replicas_sharing_redis_introspect_a_token_once(
    local_issuer: LocalIssuer, redis_server: RedisServer, fleet: Fleet, twin: Twin
) -> None:
    a, b = (fleet.replica(local_issuer, redis_server.url) for _ in range(2))
    token = local_issuer.mint_opaque(scope="orders.read", client_id="app")
    stranger = "never-issued-" + "x" * 30
    local_issuer.reset_counts()
    for server in (a, b, a, b):
        access = twin.authenticate(server, bearer(token))
        assert access.client_id == "app" and access.scopes == {"orders.read"}
        with pytest.raises(InvalidTokenError) as info:
            twin.authenticate(server, bearer(stranger))
        assert info.value.reason is Reason.INACTIVE
    # One call for the answer, one for the refusal: the second replica read both from Redis.
    assert local_issuer.count("introspect") == 2


def test_redis_keys_hold_no_token(
    local_issuer: LocalIssuer, redis_server: RedisServer, redis_db: redis.Redis, fleet: Fleet
) -> None:
    token = local_issuer.mint_opaque(scope="orders.read")
    fleet.replica(local_issuer, redis_server.url).authenticate(bearer(token))
    names = [cast(bytes, name).decode() for name in redis_db.keys("*")]
    assert names and all(name.startswith("bearerguard:v1:intro:") for name in names)
    dump = b"".join(cast(bytes, redis_db.get(name) or b"") for name in names)
    assert token not in " ".join(names) and token.encode() not in dump


def test_concurrent_replicas_make_one_call_per_token(
    local_issuer: LocalIssuer, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    fleet = Fleet(Twin("sync"))  # threads drive the sync twin; the async one: the next test
    replicas = [fleet.replica(local_issuer, redis_server.url) for _ in range(3)]
    local_issuer.set_delay(0.2)  # every replica asks while the first call is in flight
    tokens = [local_issuer.mint_opaque(scope="s", client_id=f"c{i}") for i in range(4)]
    local_issuer.reset_counts()
    barrier = threading.Barrier(12)

    def ask(n: int) -> str | None:
        server, token = replicas[n % 3], tokens[n % 4]
        barrier.wait()
        return server.authenticate(bearer(token)).client_id

    try:
        with ThreadPoolExecutor(12) as pool:
            seen = list(pool.map(ask, range(12)))
    finally:
        for replica in replicas:
            replica.close()
        fleet.close()
    assert Counter(seen) == {f"c{i}": 3 for i in range(4)}
    assert local_issuer.count("introspect") == 4  # one per token, not one per replica


def test_concurrent_async_replicas_make_one_call(
    local_issuer: LocalIssuer, redis_server: RedisServer, redis_db: redis.Redis
) -> None:
    stores = [RedisStore(redis_server.url, secret=SECRET, timeout=2) for _ in range(3)]
    config = Introspection(
        endpoint=local_issuer.introspection_endpoint,
        client_id="test-client",
        client_secret="test-secret",
        allow_http=True,
    )
    replicas = [ResourceServer(introspection=config, store=store) for store in stores]
    local_issuer.set_delay(0.2)
    token = local_issuer.mint_opaque(scope="s", client_id="app")
    local_issuer.reset_counts()

    async def main() -> list[AccessToken]:
        try:
            calls = [r.aauthenticate(bearer(token)) for r in replicas for _ in range(3)]
            return await asyncio.gather(*calls)
        finally:
            for replica, store in zip(replicas, stores, strict=True):
                await replica.aclose()
                await store.aclose()
                store.close()

    assert {access.client_id for access in asyncio.run(main())} == {"app"}
    assert local_issuer.count("introspect") == 1


def test_a_lock_holder_that_died_holds_the_others_back_only_until_its_lock_expires(
    local_issuer: LocalIssuer, redis_server: RedisServer, fleet: Fleet, twin: Twin
) -> None:
    server = fleet.replica(local_issuer, redis_server.url)
    token = local_issuer.mint_opaque(scope="s")
    # A replica took the fleet's lock for this token, then died without storing an answer.
    answers = server._introspector.answers  # type: ignore[union-attr]
    assert answers.answers.lock(LOCK + answers.key(token_key(token)), 0.5) is not None
    started = time.monotonic()
    assert twin.authenticate(server, bearer(token)).scopes == {"s"}
    assert 0.4 < time.monotonic() - started < 3  # waited for the lock to expire, then asked


# -- revocation --------------------------------------------------------------------------------


def test_a_revoked_token_is_refused_by_every_replica_within_the_ttl(
    local_issuer_factory: Factory,
    redis_server: RedisServer,
    fleet: Fleet,
    twin: Twin,
    clock: FakeClock,
) -> None:
    at = local_issuer_factory(clock=clock.time)
    a, b = (fleet.replica(at, redis_server.url, clock=clock, cache_max_ttl=5) for _ in range(2))
    token = at.mint_opaque(scope="s")
    at.reset_counts()
    for server in (a, b):
        twin.authenticate(server, bearer(token))
    at.revoke(token)
    clock.advance(4.9)
    for server in (a, b):  # within the TTL: the cached answer
        twin.authenticate(server, bearer(token))
    clock.advance(0.1)
    for server in (a, b, a, b):
        with pytest.raises(InvalidTokenError) as info:
            twin.authenticate(server, bearer(token))
        assert info.value.reason is Reason.INACTIVE
    assert at.count("introspect") == 2  # the answer, then the refusal: each once for the fleet


# -- roles -------------------------------------------------------------------------------------

JAMF = "http://jamf.example.test:8080"


class Lookup:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.table = {"2": ["Read Computers"], "7": ["Update Computers"]}

    def __call__(self, role_id: str) -> list[str]:
        self.calls[role_id] += 1
        return list(self.table.get(role_id, []))


def role_replica(jamf: LocalIssuer, resolver: RoleResolver, store: Any) -> ResourceServer:
    issuer = Issuer(
        issuer=JAMF,
        audience="client",
        algorithms=["HS256"],
        shared_secret=jamf.shared_secret(),
        scope_claims=["scope"],
        roles=resolver,
    )
    return ResourceServer(issuer, store=store)


def test_replicas_sharing_redis_look_a_role_up_once_and_see_invalidate(
    redis_server: RedisServer, fleet: Fleet, twin: Twin
) -> None:
    jamf = LocalIssuer(algorithms=("HS256",))
    lookup = Lookup()
    stores = [
        TieredStore(MemoryStore(), fleet.store(redis_server.url), local_ttl=0.2) for _ in range(2)
    ]
    a, b = (role_replica(jamf, RoleResolver(lookup, name="jamf"), store) for store in stores)
    token = jamf.mint(issuer=JAMF, audience="client", scope=["api-role:2", "api-role:7", "x"])
    for server in (a, b, a, b):
        assert twin.verify(server, token).scopes == {"Read Computers", "Update Computers", "x"}
    assert lookup.calls == {"2": 1, "7": 1}
    lookup.table["2"] = ["Delete Computers"]
    a.issuers[0].roles.invalidate("2")  # type: ignore[union-attr]
    time.sleep(0.3)  # b's local copy lives local_ttl at most
    assert "Delete Computers" in twin.verify(b, token).scopes
    assert lookup.calls == {"2": 2, "7": 1}


# -- Redis down, hanging, flushed, tampered with -----------------------------------------------


def test_redis_down_falls_back_to_the_as_then_recovers(
    local_issuer: LocalIssuer,
    relay: Relay,
    fleet: Fleet,
    twin: Twin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "bearerguard.store")
    shared = fleet.store(relay.url, timeout=0.25, retry_after=0.3)
    a, b = (fleet.replica(local_issuer, relay.url, store=shared) for _ in range(2))
    kept = local_issuer.mint_opaque(scope="s", client_id="kept")
    twin.authenticate(a, bearer(kept))
    relay.cut()
    revoked = local_issuer.mint_opaque(scope="s")
    local_issuer.revoke(revoked)
    fresh = [local_issuer.mint_opaque(scope="s", client_id=f"f{i}") for i in range(3)]
    local_issuer.reset_counts()
    for server in (a, b):
        assert twin.authenticate(server, bearer(kept)).client_id == "kept"
        for i, token in enumerate(fresh):
            assert twin.authenticate(server, bearer(token)).client_id == f"f{i}"
        with pytest.raises(InvalidTokenError):  # never an acceptance Redis would not make
            twin.authenticate(server, bearer(revoked))
    # b had never seen `kept`: Redis down, it asked the AS; per replica now, not per fleet.
    assert local_issuer.count("introspect") == 1 + 2 * (len(fresh) + 1)
    status = a.store_status()
    assert not status.up and status.last_error
    relay.resume()
    time.sleep(0.35)  # retry_after
    twin.authenticate(a, bearer(local_issuer.mint_opaque(scope="s")))
    assert a.store_status().up
    lines = [r.getMessage() for r in caplog.records if r.name == "bearerguard.store"]
    assert [("down" in line, "back up" in line) for line in lines] == [(True, False), (False, True)]


def test_redis_hanging_costs_a_request_its_timeout_and_no_more(
    local_issuer: LocalIssuer, relay: Relay, fleet: Fleet, twin: Twin
) -> None:
    server = fleet.replica(
        local_issuer, relay.url, store=fleet.store(relay.url, timeout=0.25, retry_after=5)
    )
    twin.authenticate(server, bearer(local_issuer.mint_opaque(scope="s")))  # connected
    relay.pause()
    try:
        for i in range(3):
            token = local_issuer.mint_opaque(scope="s", client_id=f"c{i}")
            started = time.monotonic()
            assert twin.authenticate(server, bearer(token)).client_id == f"c{i}"
            # The first finds Redis hanging (a read, a write: each cut at the timeout); the
            # others find it marked down and pay nothing for it.
            assert time.monotonic() - started < (2.0 if i == 0 else 0.5)
        assert not server.store_status().up
    finally:
        relay.resume()


def test_redis_flushed_mid_run_means_asking_the_as_again(
    local_issuer: LocalIssuer,
    redis_server: RedisServer,
    redis_db: redis.Redis,
    fleet: Fleet,
    twin: Twin,
) -> None:
    a, b = (fleet.replica(local_issuer, redis_server.url) for _ in range(2))
    token = local_issuer.mint_opaque(scope="s")
    local_issuer.reset_counts()
    twin.authenticate(a, bearer(token))
    redis_db.flushall()
    assert twin.authenticate(b, bearer(token)).scopes == {"s"}
    assert local_issuer.count("introspect") == 2
    assert twin.authenticate(a, bearer(token)).scopes == {"s"}  # its own cache: no call
    assert local_issuer.count("introspect") == 2


def test_values_with_a_wrong_tag_are_misses_and_never_accept(
    local_issuer: LocalIssuer,
    redis_server: RedisServer,
    redis_db: redis.Redis,
    fleet: Fleet,
    twin: Twin,
) -> None:
    a, b = (fleet.replica(local_issuer, redis_server.url) for _ in range(2))
    token = local_issuer.mint_opaque(scope="s", client_id="real")
    twin.authenticate(a, bearer(token))
    for name in redis_db.keys("*"):  # someone who can write to Redis, without the secret
        value = cast(bytes, redis_db.get(name) or b"")
        redis_db.set(name, b"\0" * 16 + value[16:])
    local_issuer.reset_counts()
    assert twin.authenticate(b, bearer(token)).client_id == "real"
    assert local_issuer.count("introspect") == 1  # a miss: asked again
    # An "active" answer planted for a token the AS never issued, under the right key name
    # (the strongest attacker: one who knows the names), with a tag made without the secret.
    made_up = "made-up-token-" + "y" * 30
    answers = b._introspector.answers  # type: ignore[union-attr]
    name = fleet.stores[1].name(answers.key(token_key(made_up)))
    planted = AccessToken(local_issuer.issuer, "mallory", "mallory", frozenset({"admin"}), {}, None)
    forged = encode(planted, time.time() + 600)
    redis_db.set(name, b"\1" * 16 + forged)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(b, bearer(made_up))
    assert info.value.reason is Reason.INACTIVE


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    garbage=st.one_of(
        st.binary(max_size=200),
        st.builds(lambda b: b"bg1" + b, st.binary(max_size=200)),
        st.builds(
            lambda text: b"bg1" + text.encode(),
            st.sampled_from(
                [
                    '{"k":"t","u":1e300}',
                    '{"k":"r","u":1e300,"r":"EXPIRED","n":[1,2,3]}',
                    '{"k":"p","u":1e300,"p":["admin"]}',
                    '{"k":"t","u":1e300,"i":"x","o":"jwt"}',
                    '{"k":"r","u":1e300,"r":"nope"}',
                    '{"k":"t","u":"soon"}',
                ]
            ),
        ),
    ),
    active=st.booleans(),
)
def test_whatever_redis_holds_the_verdict_is_the_as_s(
    local_issuer_session: LocalIssuer,
    redis_server: RedisServer,
    redis_db: redis.Redis,
    garbage: bytes,
    active: bool,
) -> None:
    at = local_issuer_session
    store = RedisStore(redis_server.url, secret=SECRET, timeout=2)
    config = Introspection(
        endpoint=at.introspection_endpoint,
        client_id="test-client",
        client_secret="test-secret",
        allow_http=True,
    )
    server = ResourceServer(introspection=config, store=store)
    try:
        token = at.mint_opaque(scope="s", client_id="real")
        if not active:
            at.revoke(token)
        name = server._introspector.answers.key(token_key(token))  # type: ignore[union-attr]
        for key in (name, "neg" + name[5:]):  # tagged with the secret: only the codec judges
            store.set(key, garbage, 60)
        if active:
            access = server.authenticate(bearer(token))
            assert access.client_id == "real" and access.scopes == {"s"}
        else:
            with pytest.raises(InvalidTokenError):
                server.authenticate(bearer(token))
    finally:
        server.close()
        store.close()


# -- DPoP replays, fleet-wide ------------------------------------------------------------------


def test_a_dpop_proof_replayed_to_another_replica_is_refused(
    twin: Twin, redis_server: RedisServer, redis_db: redis.Redis, local_issuer: LocalIssuer
) -> None:
    # Replicas sharing Redis as their store keep DPoP jtis there too, with no dpop_store given:
    # a proof accepted by one replica is a replay for every other.
    key = DPoPKey("ES256")
    token = local_issuer.mint(dpop_jkt=key.jkt)
    config = Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience, allow_http=True)
    stores = [RedisStore(redis_server.url, secret=SECRET, timeout=2) for _ in range(2)]
    first, second = (ResourceServer(config, store=store, dpop="allowed") for store in stores)
    twin.servers.extend([first, second])  # closed by the fixture
    url = "https://api.example.test/orders"
    proof = key.proof("GET", url, token)
    credentials = Credentials("DPoP", token, "GET", url, (proof,))
    try:
        assert twin.verify_credentials(first, credentials).issuer == local_issuer.issuer
        with pytest.raises(InvalidDPoPProofError) as refused:
            twin.verify_credentials(second, credentials)
        assert refused.value.reason is Reason.DPOP_REPLAYED
        fresh = Credentials("DPoP", token, "GET", url, (key.proof("GET", url, token),))
        assert twin.verify_credentials(second, fresh).issuer == local_issuer.issuer
    finally:
        for store in stores:
            store.close()
            if twin.portal is not None:
                twin.portal.call(store.aclose)


def test_the_store_state_is_a_metric(local_issuer: LocalIssuer, relay: Relay, fleet: Fleet) -> None:
    # bearerguard.store.up: 1 while Redis answers, 0 once a call found it down, 1 once it is back.
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

    from bearerguard.otel import instrument

    reader = InMemoryMetricReader()
    server = fleet.replica(local_issuer, relay.url, store=fleet.store(relay.url, retry_after=0.3))
    stop = instrument(server, meter_provider=MeterProvider(metric_readers=[reader]))

    def up() -> list[float]:
        data = reader.get_metrics_data()
        return [
            point.value
            for resource in (data.resource_metrics if data else ())
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "bearerguard.store.up"
            for point in metric.data.data_points
            if isinstance(point, NumberDataPoint)
        ]

    server.authenticate(bearer(local_issuer.mint_opaque(scope="s")))
    assert up() == [1]
    relay.cut()
    server.authenticate(bearer(local_issuer.mint_opaque(scope="s")))  # the AS answers it
    assert up() == [0]
    relay.resume()
    time.sleep(0.35)  # retry_after
    server.authenticate(bearer(local_issuer.mint_opaque(scope="s")))
    assert up() == [1]
    stop()
    server.close()


@pytest.mark.parametrize("outage", ["refuse", "local"])
def test_a_replay_store_outage_follows_the_configured_rule(
    twin: Twin, relay: Relay, fleet: Fleet, local_issuer: LocalIssuer, outage: str
) -> None:
    # "refuse" (the default): no proof is accepted while the shared store cannot record it.
    # "local": the process's own tier decides; a replay to this replica is still refused.
    key = DPoPKey("ES256")
    token = local_issuer.mint(dpop_jkt=key.jkt)
    config = Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience, allow_http=True)
    policy = DPoPPolicy(replay_outage=outage)  # type: ignore[arg-type]
    servers = [
        ResourceServer(config, store=fleet.store(relay.url, timeout=0.25), dpop=policy)
        for _ in range(2)
    ]
    twin.servers.extend(servers)
    url = "https://api.example.test/orders"
    proof = key.proof("GET", url, token)
    credentials = Credentials("DPoP", token, "GET", url, (proof,))
    relay.cut()
    if outage == "refuse":
        with pytest.raises(UpstreamUnavailableError) as unavailable:
            twin.verify_credentials(servers[0], credentials)
        assert unavailable.value.reason is Reason.DPOP_STORE
        return
    assert twin.verify_credentials(servers[0], credentials).issuer == local_issuer.issuer
    with pytest.raises(InvalidDPoPProofError) as replayed:
        twin.verify_credentials(servers[0], credentials)
    assert replayed.value.reason is Reason.DPOP_REPLAYED
    # The documented cost of "local": another replica cannot see it while Redis is down.
    assert twin.verify_credentials(servers[1], credentials).issuer == local_issuer.issuer
