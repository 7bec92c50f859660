"""Pytest fixtures for testing code that uses bearerguard against a real local issuer.

The package registers this module as the ``bearerguard`` pytest plugin, so the fixtures are
available in any test suite once bearerguard is installed:

* ``local_issuer`` -- a running :class:`~bearerguard.testing.LocalIssuer` with RS256, PS256,
  ES256, EdDSA and HS256 keys, stopped after the test;
* ``local_issuer_session`` -- the same, started once and shared by every test of the session:
  for tests that only mint and verify (one that rotates keys or breaks the issuer takes
  ``local_issuer``);
* ``local_issuer_factory`` -- ``factory(**kwargs)`` starts a ``LocalIssuer(**kwargs)``; every
  issuer it made is stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bearerguard.testing import LocalIssuer

__all__ = [
    "LOCAL_ISSUER_ALGORITHMS",
    "local_issuer",
    "local_issuer_factory",
    "local_issuer_session",
]

LOCAL_ISSUER_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "HS256")


@pytest.fixture
def local_issuer() -> Iterator[LocalIssuer]:
    """A started LocalIssuer with one key for each of ``LOCAL_ISSUER_ALGORITHMS``."""
    with LocalIssuer(algorithms=LOCAL_ISSUER_ALGORITHMS) as issuer:
        yield issuer


@pytest.fixture(scope="session")
def local_issuer_session() -> Iterator[LocalIssuer]:
    """``local_issuer``, started once for the whole test session (keys are made only once)."""
    with LocalIssuer(algorithms=LOCAL_ISSUER_ALGORITHMS) as issuer:
        yield issuer


@pytest.fixture
def local_issuer_factory() -> Iterator[Callable[..., LocalIssuer]]:
    """Start ``LocalIssuer(**kwargs)`` instances; all are stopped at teardown."""
    issuers: list[LocalIssuer] = []

    def start(**kwargs: Any) -> LocalIssuer:
        issuer = LocalIssuer(**kwargs)
        issuers.append(issuer)
        return issuer.start()

    yield start
    for issuer in issuers:
        issuer.stop()
