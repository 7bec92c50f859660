"""What a flow asks for and what it gets back: the sans-I/O side of every HTTP exchange.

A flow is a generator that yields `Fetch` requests and receives an `Outcome` for each; the drivers
in `_fetch` carry them out. Turning a response into an `Outcome` is pure and lives here.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from ._jose import json_object

T = TypeVar("T")

MAX_DOCUMENT_BYTES = 512 * 1024  # JWKS, metadata and introspection answers are a few KiB at most
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Fetch:
    """One HTTP request a flow needs: a GET of a document, or a form POST."""

    url: str
    method: str = "GET"
    # Never in a repr: they carry client credentials and the token being introspected.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    form: tuple[tuple[str, str], ...] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Fetched:
    """An HTTP answer: status, the body as a JSON object (None if it is not one), max-age."""

    status: int
    document: dict[str, Any] | None
    max_age: float | None = None
    problem: str | None = None  # why the body is no document (safe to log: never its text)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.document is not None


@dataclass(frozen=True, slots=True)
class FetchFailed:
    """No HTTP answer: timeout, connection refused, TLS failure, body too large."""

    reason: str


Outcome: TypeAlias = Fetched | FetchFailed
Flow: TypeAlias = Generator[Fetch, Outcome, T]


def to_outcome(status: int, headers: Mapping[str, str], body: bytes) -> Fetched:
    """Read an HTTP answer: strict JSON object body, and `Cache-Control` freshness (RFC 9111)."""
    problem = None
    try:
        document: dict[str, Any] | None = json_object(body)
    except ValueError as exc:  # says what, never quotes the body: "JSON nested more than 64 deep"
        document, problem = None, str(exc)
    return Fetched(status, document, max_age(headers.get("cache-control", "")), problem)


def max_age(cache_control: str) -> float | None:
    """Seconds the response may be reused: `max-age`, or 0 for `no-store`/`no-cache`."""
    if _NO_CACHE.search(cache_control):
        return 0.0
    if match := _MAX_AGE.search(cache_control):
        return float(match[1])
    return None


def recorded(flow: Flow[T], seen: list[tuple[Fetch, Outcome]]) -> Flow[T]:
    """`flow`, keeping each request it made with the outcome it got."""
    try:
        fetch = next(flow)
        while True:
            outcome = yield fetch
            seen.append((fetch, outcome))
            fetch = flow.send(outcome)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def describe(outcome: Outcome) -> str:
    """A short, secret-free description of a failed outcome for logs and health checks."""
    if isinstance(outcome, FetchFailed):
        return outcome.reason
    if outcome.document is None:
        # An answer that should be the document says why it is not (an error status says it all)
        why = f" ({outcome.problem})" if outcome.problem and 200 <= outcome.status < 300 else ""
        return f"HTTP {outcome.status}, body is not a JSON object{why}"
    return f"HTTP {outcome.status}"
