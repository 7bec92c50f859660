"""What happens in a resource server, as events: one emitter, any number of subscribers.

A `ResourceServer` reports through its `events` (an `Events`): a token accepted or refused, keys
loaded or not, an introspection call, roles resolved. Logging is one subscriber (`log_event`,
subscribed by default: the lines of the README's logging section), OpenTelemetry another
(`bearerguard.otel`); users subscribe any callable, as Authlib's signals, Spring Security's
observations or ASP.NET's `JwtBearerEvents` let them (count refusals by client, alert on a key
rotation, audit accepted clients).

Rules every event keeps, so a subscriber may ship it anywhere:
- no token, proof, secret or URL query is ever in an event; values read from a token before its
  signature was checked are marked as such (`Seen.source`), and subscribers that show them must
  escape them (`_logfields` does);
- an event is a frozen value, made after the fact: a subscriber cannot change an outcome;
- a subscriber that raises is logged (once per subscriber, then counted) and never fails the
  request; subscribers run on the request's thread or task, in subscription order, so they must
  be quick (hand slow work to a queue).

Cost: a kind nobody subscribed to costs one attribute test at its emission site (`if
events.refused:`); a verified-token cache hit emits only to subscribers that asked for hits.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import NamedTuple, TypeAlias

from ._errors import BearerError, Seen, UpstreamUnavailableError

logger = logging.getLogger("bearerguard.events")


class TokenAccepted(NamedTuple):
    """A token was accepted. `cached`: served by the verified-token cache without verifying it
    again (delivered only to subscribers that asked for hits, see `Events.subscribe`).
    `duration`: seconds the server spent on it, None when nobody timed it."""

    source: str  # "jwt" or "introspection"
    issuer: str
    client_id: str | None
    cached: bool
    duration: float | None = None


class TokenRefused(NamedTuple):
    """A request was refused: `error.reason`, `error.status_code`. `seen` is what the server had
    read of the token (never the token); `required` the scopes a route wanted (403); `detail`
    a fixed, secret-free text saying more than the reason."""

    error: BearerError | UpstreamUnavailableError
    seen: Seen | None = None
    required: tuple[str, ...] = ()
    detail: str | None = None


class KeysFetched(NamedTuple):
    """An issuer's keys were fetched (discovery included): `error` is None when they loaded.

    `kids` are those now published, `previous` those before (None at the first load); `url`
    the JWKS (or first discovery) URL, redacted. `started` is the wall-clock time the fetch
    began, `duration` its length in seconds: enough for a span of the call.
    """

    issuer: str
    url: str | None
    error: str | None
    kids: tuple[str | None, ...] = ()
    previous: tuple[str | None, ...] | None = None
    started: float = 0.0
    duration: float = 0.0


class IntrospectionCalled(NamedTuple):
    """The authorization server was asked about a token (RFC 7662), the answer not cached.

    `outcome` is `"active"`, `"inactive"` (an answer that refuses the token) or `"error"` (no
    trustworthy answer: a 503, `error` says why); `status` the HTTP status if one came back;
    `url` redacted.
    """

    issuer: str | None
    url: str | None
    outcome: str
    status: int | None
    started: float
    duration: float
    error: str | None = None


class RolesResolved(NamedTuple):
    """A token's role ids were turned into privileges: `looked_up` of `roles` were not in the
    role cache (0: all were); `error` is set when a lookup failed (the request gets a 503)."""

    issuer: str
    roles: int
    looked_up: int
    error: str | None = None
    duration: float = 0.0


Event: TypeAlias = TokenAccepted | TokenRefused | KeysFetched | IntrospectionCalled | RolesResolved
Subscriber: TypeAlias = Callable[[Event], object]

# Each kind's attribute on `Events`: the tuple of its subscribers, empty (falsy) when none.
KINDS: dict[type[Event], str] = {
    TokenAccepted: "accepted",
    TokenRefused: "refused",
    KeysFetched: "keys",
    IntrospectionCalled: "introspection",
    RolesResolved: "roles",
}


class Events:
    """The emitter of one server (or of several that share it): `subscribe`, `emit`.

    Each kind has a tuple of subscribers (`accepted`, `refused`, `keys`, `introspection`,
    `roles`, and `hits` for verified-token cache hits), replaced whole on (un)subscription so
    that `emit` reads it without a lock. Emission sites test the tuple before they build an
    event: that test is all an unwatched kind costs.
    """

    __slots__ = (
        "_failed",
        "_lock",
        "_watchers",
        "accepted",
        "hits",
        "introspection",
        "keys",
        "refused",
        "roles",
    )

    def __init__(self) -> None:
        self.accepted: tuple[Subscriber, ...] = ()
        self.hits: tuple[Subscriber, ...] = ()
        self.refused: tuple[Subscriber, ...] = ()
        self.keys: tuple[Subscriber, ...] = ()
        self.introspection: tuple[Subscriber, ...] = ()
        self.roles: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._failed: dict[int, int] = {}  # failures by subscriber id: a traceback once
        self._watchers: list[weakref.WeakMethod[Callable[[], None]]] = []

    def subscribe(
        self, callback: Subscriber, *kinds: type[Event], hits: bool = False
    ) -> Callable[[], None]:
        """Call `callback(event)` for every event of `kinds` (all kinds if none is given).

        Verified-token cache hits (`TokenAccepted` with `cached=True`) are the most frequent
        event by far: they go only to subscribers that pass `hits=True` (metrics do, the log
        does not). Returns a function that unsubscribes `callback` from what this call chose.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        chosen = kinds or tuple(KINDS)
        for kind in chosen:
            if kind not in KINDS:
                raise TypeError(f"not an event kind: {kind!r}")
        names = [KINDS[kind] for kind in chosen]
        if hits and TokenAccepted in chosen:
            names.append("hits")
        with self._lock:
            for name in names:
                setattr(self, name, (*getattr(self, name), callback))
        self._changed()

        def unsubscribe() -> None:
            with self._lock:
                for name in names:
                    callbacks = list(getattr(self, name))
                    if callback in callbacks:
                        callbacks.remove(callback)
                    setattr(self, name, tuple(callbacks))
            self._changed()

        return unsubscribe

    def watch(self, changed: Callable[[], None]) -> None:
        """Call the bound method `changed()` now and after every (un)subscription, for as long
        as its object lives: a server keeps what its hot path asks (any hit subscriber?) in its
        own attributes, which a cache hit reads anyway, rather than in this object's."""
        self._watchers.append(weakref.WeakMethod(changed))
        changed()

    def _changed(self) -> None:
        for watcher in list(self._watchers):
            if (changed := watcher()) is not None:
                changed()
            else:
                self._watchers.remove(watcher)

    def emit(self, event: Event) -> None:
        """Give `event` to its kind's subscribers; one that raises never fails the caller."""
        kind = "hits" if type(event) is TokenAccepted and event.cached else KINDS[type(event)]
        for callback in getattr(self, kind):
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not become a 500 or a refusal
                self._subscriber_failed(callback)

    def _subscriber_failed(self, callback: Subscriber) -> None:
        with self._lock:
            count = self._failed[id(callback)] = self._failed.get(id(callback), 0) + 1
        if count == 1:
            logger.exception("event subscriber %r raised; it keeps its subscription", callback)
        elif count & (count - 1) == 0:  # 2, 4, 8...: a recurring failure stays visible
            logger.error("event subscriber %r has raised %d times", callback, count)
