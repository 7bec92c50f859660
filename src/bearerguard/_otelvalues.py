"""The values `bearerguard.otel` gives its attributes, each from a bounded set, and the tally
behind its per-request counters.

An attribute value read from a request (an issuer an authorization server names, the text of a
failure) goes through here: issuers beyond the configured ones are kept up to `MAX_ISSUERS`,
then `_OTHER`; a failure becomes an `error.type` from a closed list; a URL loses its userinfo
and query. Imported only by `bearerguard.otel` (it needs `opentelemetry-api`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx
from opentelemetry.metrics import CallbackOptions, Observation

from ._events import TokenAccepted, TokenRefused

# Distinct issuer values an instrumented server gives its attributes; later ones are `_OTHER`.
MAX_ISSUERS = 32
OTHER = "_OTHER"  # the semantic conventions' fallback for a value outside the known set

Attributes = dict[str, Any]


def accepted_attributes(event: TokenAccepted, issuer: str) -> Attributes:
    return {
        "bearerguard.outcome": "accepted",
        "bearerguard.token.source": event.source,
        "bearerguard.issuer": issuer,
        "bearerguard.cache.hit": event.cached,
    }


def refused_attributes(event: TokenRefused) -> Attributes:
    attributes: Attributes = {
        "bearerguard.outcome": "refused",
        "bearerguard.reason": event.error.reason.name,
        "http.response.status_code": event.error.status_code,
    }
    if event.seen is not None:
        attributes["bearerguard.token.source"] = event.seen.source
    return attributes


class Tally:
    """Counts by attribute set, reported by an observable counter when the reader collects.

    Keys are small tuples of bounded values; each key's attributes are made once, by
    `make(*args)`, the first time it is counted.
    """

    def __init__(self) -> None:
        self._counts: dict[Hashable, list[Any]] = {}  # key -> [attributes, count]
        self._lock = threading.Lock()

    def entry(self, key: Hashable, make: Callable[..., Attributes], *args: Any) -> list[Any]:
        """The `[attributes, count]` of `key`, made now if it is new."""
        with self._lock:
            entry = self._counts.get(key)
            if entry is None:
                entry = self._counts[key] = [make(*args), 0]
            return entry

    def add(self, entry: list[Any]) -> None:
        self._lock.acquire()  # not `with`: the context manager costs twice as much on 3.11
        try:
            entry[1] += 1
        finally:
            self._lock.release()

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            return [Observation(count, attributes) for attributes, count in self._counts.values()]


class BoundedIssuers:
    """Issuer values for attributes: the configured ones, then the first `MAX_ISSUERS` others
    met (an authorization server's answers name them), then `_OTHER`."""

    def __init__(self, known: Iterable[str]) -> None:
        self._known = set(known)
        self._limit = len(self._known) + MAX_ISSUERS

    def value(self, issuer: object) -> str:
        if not isinstance(issuer, str):
            return OTHER
        if issuer in self._known:
            return issuer
        if len(self._known) < self._limit:
            self._known.add(issuer)  # a race may admit one or two more: still bounded
            return issuer
        return OTHER


_HTTP_STATUS = re.compile(r"\bHTTP ([1-5][0-9][0-9])\b")
_WORD = re.compile(r"[A-Za-z]+")
# The fetch driver reports a transport failure by the name of httpx's exception, or "Timeout"
# for its own deadline; only those names become an `error.type`, whatever else a text holds.
_TRANSPORT_ERRORS = frozenset(
    name
    for name, value in vars(httpx).items()
    if isinstance(value, type) and issubclass(value, Exception)
) | {"Timeout"}


def error_type(error: str, status: int | None = None) -> str:
    """A low-cardinality `error.type` for an upstream failure: the HTTP status (as the semantic
    conventions ask) if an error status came back, the transport exception's name if one was
    raised, `invalid_response` for an answer that is not a usable document, else `_OTHER`."""
    if status is not None and status >= 400:
        return str(status)
    if (found := _HTTP_STATUS.search(error)) is not None:
        return found.group(1) if found.group(1)[0] in "45" else "invalid_response"
    words: list[str] = _WORD.findall(error)
    return next((word for word in words if word in _TRANSPORT_ERRORS), OTHER)


def url_attributes(url: str | None) -> Attributes:
    """`server.address`, `server.port`, `url.scheme` of a (redacted) URL."""
    parts = _split(url)
    if parts is None:
        return {}
    attributes: Attributes = {"url.scheme": parts.scheme, "server.address": parts.hostname}
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port is not None:
        attributes["server.port"] = port
    return attributes


def shown_url(url: str | None) -> str | None:
    """`url` as scheme, host, port and path: no userinfo, query or fragment."""
    parts = _split(url)
    if parts is None:
        return None
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _split(url: str | None) -> SplitResult | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not one
    except ValueError:
        return None
    return parts if parts.scheme and parts.hostname else None
