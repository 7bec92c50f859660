"""Shared fixtures: a fake clock, and the sync/async flavour every behaviour runs through."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import settings

from bearerguard import AccessToken, Credentials, ResourceServer

from .helpers import Signer

# Hypothesis profiles for every property test: "ci", the default, keeps each to a few seconds;
# `pytest --hypothesis-profile=long tests/property` explores far more, for runs by hand. The
# deadline is part of the oracle (no input may make a check hang), generous for a shared machine.
settings.register_profile("ci", max_examples=60, deadline=timedelta(seconds=2), print_blob=True)
settings.register_profile("long", max_examples=3000, deadline=timedelta(seconds=5), print_blob=True)
settings.load_profile("ci")


@dataclass
class FakeClock:
    """Wall time and the monotonic timer, moved together by `advance`."""

    now: float = 1_700_000_000.0
    mono: float = 1_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Twin:
    """Calls the sync twin, or the async twin on one event loop kept for the whole test."""

    flavour: str
    portal: BlockingPortal | None = None
    servers: list[ResourceServer] = field(default_factory=list)

    def authenticate(self, server: ResourceServer, authorization: str | None) -> AccessToken:
        self._track(server)
        if self.portal is None:
            return server.authenticate(authorization)
        return self.portal.call(server.aauthenticate, authorization)

    def verify(self, server: ResourceServer, token: str) -> AccessToken:
        self._track(server)
        if self.portal is None:
            return server.verify(token)
        return self.portal.call(server.averify, token)

    def verify_credentials(self, server: ResourceServer, credentials: Credentials) -> AccessToken:
        self._track(server)
        if self.portal is None:
            return server.verify_credentials(credentials)
        return self.portal.call(server.averify_credentials, credentials)

    def _track(self, server: ResourceServer) -> None:
        if server not in self.servers:
            self.servers.append(server)


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> Iterator[Twin]:
    """Every behaviour test takes this fixture and runs once per entry point."""
    if request.param == "sync":
        twin = Twin("sync")
        yield twin
        for server in twin.servers:
            server.close()
        return
    with start_blocking_portal() as portal:
        twin = Twin("async", portal)
        yield twin
        for server in twin.servers:
            portal.call(server.aclose)


@pytest.fixture(scope="session")
def signer() -> Signer:
    """Keys for RS256, PS256, ES256 and EdDSA, generated once per test session."""
    return Signer.generate()
