"""Role-ID scopes resolved by `RoleResolver`, through both twins of `ResourceServer`.

Tokens come from a shared-secret issuer (no network needed to verify them), so the only I/O is
the lookup itself; the introspection test uses a running LocalIssuer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bearerguard import (
    ConfigurationError,
    Introspection,
    Issuer,
    Requirement,
    ResourceServer,
    RoleResolver,
    UpstreamUnavailableError,
)
from bearerguard.testing import LocalIssuer

from ..conftest import FakeClock, Twin

JAMF = "http://jamf.example.test:8080"
CLIENT = "0b1f6c2e-6b2d-4a57-9d7c-0a3c2a0d9e11"
ROLES = {
    "2": ["Read Computers", "Read Mobile Devices"],
    "7": ["Update Computers", "Read Computers"],
}


class Lookup:
    """A role lookup that counts its calls and answers from a mutable table."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = dict(ROLES if table is None else table)
        self.calls: Counter[str] = Counter()

    def __call__(self, role_id: str) -> list[str]:
        self.calls[role_id] += 1
        return list(self.table.get(role_id, []))


@pytest.fixture(scope="module")
def jamf() -> LocalIssuer:
    return LocalIssuer(algorithms=("HS256",))  # minting needs no running server


def server_for(jamf: LocalIssuer, roles: RoleResolver, **options: Any) -> ResourceServer:
    issuer = Issuer(
        issuer=JAMF,
        audience=CLIENT,
        algorithms=["HS256"],
        shared_secret=jamf.shared_secret(),
        scope_claims=["scope"],
        roles=roles,
    )
    return ResourceServer(issuer, **options)


def jamf_token(jamf: LocalIssuer, *scope: str) -> str:
    return jamf.mint(issuer=JAMF, audience=CLIENT, subject=CLIENT, scope=list(scope))


def test_roles_are_unioned_with_the_literal_scopes(jamf: LocalIssuer, twin: Twin) -> None:
    lookup = Lookup()
    server = server_for(jamf, RoleResolver(lookup))
    token = jamf_token(jamf, "api-role:2", "api-role:7", "api-role:99", "inventory")
    access = twin.verify(server, token)
    # Role references are replaced by their privileges; unknown role 99 grants nothing.
    assert access.scopes == {
        "Read Computers",
        "Read Mobile Devices",
        "Update Computers",
        "inventory",
    }
    assert access.claims["scope"] == ("api-role:2", "api-role:7", "api-role:99", "inventory")
    Requirement.of("Update Computers", "inventory").check(access)
    assert lookup.calls == {"2": 1, "7": 1, "99": 1}
    twin.verify(server, token)
    assert lookup.calls == {"2": 1, "7": 1, "99": 1}  # cached per role


def test_tokens_without_role_references_never_call_the_lookup(
    jamf: LocalIssuer, twin: Twin
) -> None:
    lookup = Lookup()
    server = server_for(jamf, RoleResolver(lookup))
    access = twin.verify(server, jamf_token(jamf, "inventory", "api-role:x", "xapi-role:2"))
    assert access.scopes == {"inventory", "api-role:x", "xapi-role:2"}  # fully matched only
    assert not lookup.calls


def test_privilege_changes_show_after_the_ttl_and_at_once_after_invalidate(
    jamf: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    lookup = Lookup()
    resolver = RoleResolver(lookup, ttl=30)
    server = server_for(jamf, resolver, timer=clock.monotonic)
    token = jamf_token(jamf, "api-role:2")
    assert "Delete Computers" not in twin.verify(server, token).scopes
    lookup.table["2"] = ["Delete Computers"]
    clock.advance(29)
    assert "Delete Computers" not in twin.verify(server, token).scopes  # within the TTL
    clock.advance(2)
    # The same token, from the verified-token cache, now with the role's new privileges.
    assert twin.verify(server, token).scopes == {"Delete Computers"}
    lookup.table["2"] = []
    resolver.invalidate("2")
    assert twin.verify(server, token).scopes == frozenset()
    lookup.table["2"] = ["Read Computers"]
    resolver.invalidate()
    assert twin.verify(server, token).scopes == {"Read Computers"}
    assert lookup.calls["2"] == 4


def test_a_failing_lookup_is_503_and_not_cached(jamf: LocalIssuer, twin: Twin) -> None:
    fail = True

    def lookup(role_id: str) -> list[str]:
        if fail:
            raise ConnectionError("jamf is down")
        return ["Read Computers"]

    server = server_for(jamf, RoleResolver(lookup))
    token = jamf_token(jamf, "api-role:2", "inventory")
    with pytest.raises(UpstreamUnavailableError) as info:
        twin.verify(server, token)
    assert info.value.status_code == 503
    fail = False
    assert twin.verify(server, token).scopes == {"Read Computers", "inventory"}


@pytest.mark.parametrize("answer", ["Read Computers", None, [1], 5], ids=repr)
def test_a_lookup_answer_of_the_wrong_type_is_503(
    jamf: LocalIssuer, twin: Twin, answer: object
) -> None:
    server = server_for(jamf, RoleResolver(lambda role_id: answer))  # type: ignore[arg-type]
    with pytest.raises(UpstreamUnavailableError):
        twin.verify(server, jamf_token(jamf, "api-role:2"))


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_lookup_that_times_out_is_503(jamf: LocalIssuer, twin: Twin, kind: str) -> None:
    release = threading.Event()

    def slow(role_id: str) -> list[str]:
        release.wait(10)
        return ["Read Computers"]

    async def aslow(role_id: str) -> list[str]:
        while not release.is_set():  # on the sync path this runs in a worker thread
            await asyncio.sleep(0.01)
        return ["Read Computers"]

    resolver = RoleResolver(slow if kind == "sync" else aslow, timeout=0.05)
    server = server_for(jamf, resolver)
    try:
        with pytest.raises(UpstreamUnavailableError):
            twin.verify(server, jamf_token(jamf, "api-role:2"))
    finally:
        release.set()
        resolver.close()


def test_async_lookups_work_on_both_paths(jamf: LocalIssuer, twin: Twin) -> None:
    async def privileges(role_id: str) -> list[str]:
        await asyncio.sleep(0)
        return ROLES.get(role_id, [])

    server = server_for(jamf, RoleResolver(privileges))
    access = twin.verify(server, jamf_token(jamf, "api-role:2"))
    assert access.scopes == {"Read Computers", "Read Mobile Devices"}


def test_a_custom_pattern(jamf: LocalIssuer, twin: Twin) -> None:
    resolver = RoleResolver(Lookup({"ops": ["deploy"]}), pattern=r"role/(?P<id>[a-z]+)")
    server = server_for(jamf, resolver)
    assert twin.verify(server, jamf_token(jamf, "role/ops", "api-role:2")).scopes == {
        "deploy",
        "api-role:2",
    }


def test_a_pattern_needs_an_id_group() -> None:
    with pytest.raises(ConfigurationError, match="named group 'id'"):
        RoleResolver(Lookup(), pattern=r"api-role:\d+")


# -- concurrency: 50 requests with a role nobody has looked up yet ---------------------------


def blocking_lookup() -> tuple[Lookup, threading.Event, Callable[[str], Iterable[str]]]:
    lookup, release = Lookup(), threading.Event()

    def slow(role_id: str) -> Iterable[str]:
        release.wait(10)
        return lookup(role_id)

    return lookup, release, slow


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the callers never gathered"
        time.sleep(0.001)


def test_50_threads_with_a_new_role_make_one_lookup(jamf: LocalIssuer) -> None:
    lookup, release, slow = blocking_lookup()
    resolver = RoleResolver(slow)
    server = server_for(jamf, resolver)
    token = jamf_token(jamf, "api-role:2")
    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(server.verify, token) for _ in range(50)]
        # SingleFlight.callers: all 50 threads wait on the one flight before it may land.
        wait_for(lambda: resolver._flights.callers(("2", 0)) == 50)
        release.set()
        results = [f.result() for f in futures]
    assert all(r.scopes == set(ROLES["2"]) for r in results)
    assert lookup.calls == {"2": 1}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_50_tasks_with_a_new_role_make_one_lookup(jamf: LocalIssuer, kind: str) -> None:
    lookup, release, slow = blocking_lookup()
    gate = asyncio.Event()

    async def aslow(role_id: str) -> list[str]:
        await gate.wait()
        return lookup(role_id)

    server = server_for(jamf, RoleResolver(slow if kind == "sync" else aslow))
    token = jamf_token(jamf, "api-role:2")

    async def main() -> list[frozenset[str]]:
        requests = [asyncio.ensure_future(server.averify(token)) for _ in range(50)]
        for _ in range(10):  # every task runs until it waits on the one flight
            await asyncio.sleep(0)
        release.set()
        gate.set()
        return [access.scopes for access in await asyncio.gather(*requests)]

    assert asyncio.run(main()) == [set(ROLES["2"])] * 50
    assert lookup.calls == {"2": 1}


# -- the introspection path --------------------------------------------------------------------


@pytest.fixture
def opaque_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as issuer:
        yield issuer


def test_introspected_tokens_are_resolved_too(opaque_issuer: LocalIssuer, twin: Twin) -> None:
    lookup = Lookup()
    resolver = RoleResolver(lookup)
    server = ResourceServer(
        introspection=Introspection(
            endpoint=opaque_issuer.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
            roles=resolver,
        )
    )
    token = opaque_issuer.mint_opaque(scope="api-role:7 inventory")
    assert twin.verify(server, token).scopes == {"Update Computers", "Read Computers", "inventory"}
    lookup.table["7"] = []
    resolver.invalidate("7")
    assert twin.verify(server, token).scopes == {"inventory"}
    assert opaque_issuer.count("introspect") == 1  # the answer stayed cached, unresolved
