"""The store seam of `ResourceServer`, without Redis: what goes through the store and when, the
outage rule, the events of introspection and role resolution, and `from_env`."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bearerguard import (
    ConfigurationError,
    Introspection,
    InvalidTokenError,
    Issuer,
    Reason,
    ResourceServer,
    RoleResolver,
    UpstreamUnavailableError,
)
from bearerguard._answers import Answers
from bearerguard._env import STORE_VARIABLES
from bearerguard._events import Event, IntrospectionCalled, RolesResolved
from bearerguard._store import MemoryStore, StoreError, TieredStore
from bearerguard.redis import RedisStore
from bearerguard.testing import LocalIssuer

from ..conftest import FakeClock, Twin
from .conftest import SECRET


class CountingStore(MemoryStore):
    """A MemoryStore that counts its reads by kind."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.reads: Counter[str] = Counter()

    def get(self, key: str) -> bytes | None:
        self.reads[key.partition(":")[0]] += 1
        return super().get(key)


class DownStore(MemoryStore):
    """A store that is always down."""

    def get(self, key: str) -> bytes | None:
        raise StoreError("down")

    def set(self, key: str, value: bytes, ttl: float) -> None:
        raise StoreError("down")


def config(at: LocalIssuer, **kw: Any) -> Introspection:
    options: dict[str, Any] = {
        "client_id": "test-client",
        "client_secret": "test-secret",
        "allow_http": True,
    }
    return Introspection(endpoint=at.introspection_endpoint, **(options | kw))


def bearer(token: str) -> str:
    return "Bearer " + token


def test_an_introspected_token_is_served_by_the_verified_token_cache_until_its_deadline(
    local_issuer_factory: Any, clock: FakeClock, twin: Twin
) -> None:
    at = local_issuer_factory(clock=clock.time)
    store = CountingStore(timer=clock.monotonic)
    server = ResourceServer(
        introspection=config(at, cache_max_ttl=30),
        store=store,
        clock=clock.time,
        timer=clock.monotonic,
    )
    token = at.mint_opaque(scope="s")
    at.reset_counts()
    first = twin.authenticate(server, bearer(token))
    reads = store.reads["intro"]
    for _ in range(5):  # one dict lookup each: the store is not read
        assert twin.authenticate(server, bearer(token)) is first
    assert store.reads["intro"] == reads
    clock.advance(29.9)
    assert twin.authenticate(server, bearer(token)) is first
    at.revoke(token)
    clock.advance(0.1)  # the introspection cache's deadline: both caches let go of it
    with pytest.raises(InvalidTokenError):
        twin.authenticate(server, bearer(token))
    assert at.count("introspect") == 2


def test_a_store_read_serves_what_the_verified_token_cache_dropped(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    store = CountingStore()
    server = ResourceServer(introspection=config(local_issuer), store=store, token_cache_size=0)
    token = local_issuer.mint_opaque(scope="s", client_id="app")
    local_issuer.reset_counts()
    for _ in range(3):
        assert twin.authenticate(server, bearer(token)).client_id == "app"
    assert local_issuer.count("introspect") == 1
    assert store.reads["intro"] >= 3


def test_without_a_store_refusals_and_answers_keep_apart(local_issuer: LocalIssuer) -> None:
    server = ResourceServer(introspection=config(local_issuer, cache_size=50))
    answers = server._introspector.answers  # type: ignore[union-attr]
    assert answers.answers is not answers.refusals
    assert server.store is None and server.store_status().up


def test_a_store_error_is_a_miss_and_nothing_is_written(local_issuer: LocalIssuer) -> None:
    answers = Answers(config(local_issuer), store=DownStore())
    assert answers.get(b"k" * 32, 1.0) is None
    refusal = InvalidTokenError(Reason.INACTIVE)
    assert answers.put(b"k" * 32, refusal, 1.0) == (refusal, 11.0)  # served, not raised


def test_a_store_that_is_down_sends_every_request_to_the_as(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    # Not a MemoryStore of the server's own: behind a local tier, which still serves hits.
    server = ResourceServer(
        introspection=config(local_issuer), store=DownStore(), token_cache_size=0
    )
    assert isinstance(server.store, MemoryStore)  # a MemoryStore is used as it is
    token = local_issuer.mint_opaque(scope="s")
    local_issuer.revoke(revoked := local_issuer.mint_opaque(scope="s"))
    local_issuer.reset_counts()
    for _ in range(2):
        assert twin.authenticate(server, bearer(token)).scopes == {"s"}
        with pytest.raises(InvalidTokenError):
            twin.authenticate(server, bearer(revoked))
    assert local_issuer.count("introspect") == 4


def test_a_shared_store_goes_behind_a_local_tier() -> None:
    shared = RedisStore("redis://127.0.0.1:1/0", secret=SECRET)
    server = ResourceServer(Issuer(issuer="https://as.test", audience="api"), store=shared)
    assert isinstance(server.store, TieredStore) and server.store.shared is shared
    assert server.store_status() is shared.status()
    with pytest.raises(ConfigurationError):
        ResourceServer(Issuer(issuer="https://as.test", audience="api"), store="redis://")  # type: ignore[arg-type]


# -- events ------------------------------------------------------------------------------------


def test_each_call_to_the_as_is_one_introspection_event(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    server = ResourceServer(introspection=config(local_issuer))
    events: list[Event] = []
    server.events.subscribe(events.append, IntrospectionCalled)
    token = local_issuer.mint_opaque(scope="s")
    for _ in range(2):
        twin.authenticate(server, bearer(token))
        with pytest.raises(InvalidTokenError):
            twin.authenticate(server, bearer("unknown-" + "z" * 30))
    local_issuer.go_down()
    try:
        with pytest.raises(UpstreamUnavailableError):
            twin.authenticate(server, bearer("another-" + "z" * 30))
    finally:
        local_issuer.come_back()
    called = [e for e in events if isinstance(e, IntrospectionCalled)]
    assert [(e.outcome, e.status) for e in called] == [
        ("active", 200),
        ("inactive", 200),
        ("error", 503),
    ]
    assert all(e.url == local_issuer.introspection_endpoint for e in called)
    assert called[2].error and all(e.duration >= 0 and e.started > 0 for e in called)


def test_role_resolution_is_one_event_saying_how_many_roles_were_looked_up(
    twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    jamf = LocalIssuer(algorithms=("HS256",))
    failing = {"9"}

    def lookup(role_id: str) -> list[str]:
        if role_id in failing:
            raise RuntimeError("down")
        return [f"p{role_id}"]

    issuer = Issuer(
        issuer="http://jamf.test",
        audience="c",
        algorithms=["HS256"],
        shared_secret=jamf.shared_secret(),
        scope_claims=["scope"],
        roles=RoleResolver(lookup),
    )
    server = ResourceServer(issuer)
    events: list[Event] = []
    server.events.subscribe(events.append, RolesResolved)
    mint = jamf.mint
    token = mint(issuer="http://jamf.test", audience="c", scope=["api-role:1", "api-role:2"])
    assert twin.verify(server, token).scopes == {"p1", "p2"}
    twin.verify(server, token)
    caplog.set_level(logging.CRITICAL, "bearerguard")
    bad = mint(issuer="http://jamf.test", audience="c", scope=["api-role:1", "api-role:9"])
    with pytest.raises(UpstreamUnavailableError):
        twin.verify(server, bad)
    resolved = [e for e in events if isinstance(e, RolesResolved)]
    assert [(e.issuer, e.roles, e.looked_up, e.error) for e in resolved] == [
        ("http://jamf.test", 2, 2, None),
        ("http://jamf.test", 2, 0, None),
        ("http://jamf.test", 2, 2, "role 9"),
    ]


def test_role_invalidate_deletes_from_the_store(twin: Twin) -> None:
    jamf = LocalIssuer(algorithms=("HS256",))
    calls: Counter[str] = Counter()

    def lookup(role_id: str) -> list[str]:
        calls[role_id] += 1
        return ["p"]

    resolver = RoleResolver(lookup)
    store = MemoryStore()
    issuer = Issuer(
        issuer="http://jamf.test",
        audience="c",
        algorithms=["HS256"],
        shared_secret=jamf.shared_secret(),
        scope_claims=["scope"],
        roles=resolver,
    )
    server = ResourceServer(issuer, store=store)
    token = jamf.mint(issuer="http://jamf.test", audience="c", scope=["api-role:4"])
    twin.verify(server, token)
    assert len(store) == 1
    resolver.invalidate("4")
    assert len(store) == 0
    twin.verify(server, token)
    assert calls["4"] == 2


# -- from_env ----------------------------------------------------------------------------------

ENV = {"BEARERGUARD_ISSUER": "https://as.test", "BEARERGUARD_AUDIENCE": "api"}


def test_from_env_builds_a_redis_store_with_its_secret(caplog: pytest.LogCaptureFixture) -> None:
    env = ENV | {
        "BEARERGUARD_REDIS_URL": "redis://127.0.0.1:1/0",
        "BEARERGUARD_REDIS_SECRET": SECRET,
    }
    server = ResourceServer.from_env(env, strict=True)
    assert isinstance(server.store, TieredStore) and isinstance(server.store.shared, RedisStore)
    assert ResourceServer.from_env(ENV).store is None
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert all(f"| `{name}` |" in readme for name in STORE_VARIABLES)  # in the table


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (
            {"BEARERGUARD_REDIS_URL": "redis://127.0.0.1:1/0"},
            "BEARERGUARD_REDIS_SECRET is required",
        ),
        ({"BEARERGUARD_REDIS_SECRET": SECRET}, "BEARERGUARD_REDIS_URL is not"),
        (
            {"BEARERGUARD_REDIS_URL": "redis://h/0", "BEARERGUARD_REDIS_SECRET": "short"},
            "BEARERGUARD_REDIS_SECRET:",
        ),
        (
            {"BEARERGUARD_REDIS_URL": "ftp://u:pw@h/0", "BEARERGUARD_REDIS_SECRET": SECRET},
            "BEARERGUARD_REDIS_URL:",
        ),
    ],
)
def test_from_env_refuses_half_a_redis_configuration(extra: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ResourceServer.from_env(ENV | extra, strict=True)
    assert named in str(info.value)
    assert SECRET not in str(info.value) and "pw" not in str(info.value)
