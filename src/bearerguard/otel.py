"""OpenTelemetry metrics and spans for a `ResourceServer`: `instrument(server)`.

One subscriber of `server.events` (see `_events`) turns what the server reports into metrics and
into spans for its calls to the authorization server; it needs only `opentelemetry-api` (the
`bearerguard[otel]` extra): the application installs an SDK and exporters, or passes providers.
Nothing here is imported by `import bearerguard`, and a server that is not instrumented pays
nothing for this module.

What it records (names under `bearerguard.`, attribute names of the semantic conventions where
one exists, units as they ask: `s` for durations):

- `bearerguard.requests` (an observable counter: counted here, read when the SDK collects,
  because an SDK `add` costs more than a cache hit): every token accepted and request refused, by
  `bearerguard.outcome`, and `bearerguard.reason` with `http.response.status_code` for a
  refusal, `bearerguard.token.source` and `bearerguard.cache.hit` for an acceptance;
- `bearerguard.verify.duration` (histogram, s): the time the server spent on an accepted token,
  split by `bearerguard.cache.hit` (cache hits only with `hit_durations=True`);
- `bearerguard.keys.fetches` and `bearerguard.keys.fetch.duration`: JWKS fetches (discovery
  included) by outcome, with `error.type` on a failure;
- `bearerguard.introspection.calls` and `bearerguard.introspection.duration`: RFC 7662 calls by
  outcome (`active`, `inactive`, `error`) and HTTP status;
- `bearerguard.roles.resolutions`, `bearerguard.roles.lookups`, `bearerguard.roles.duration`:
  role-ID scopes resolved (from the role cache or not) and role ids looked up;
- `bearerguard.cache.entries` (observable gauge): `server.cache_sizes()`, by
  `bearerguard.cache.name`; `bearerguard.store.up` (observable gauge): 1 while the shared store
  (Redis) answers, 0 while it is down (`server.store_status()`; always 1 in memory);
- a span per key fetch and per introspection call, made after the fact from the event's start
  and duration, a child of the span current when the server reported it (the request's, under
  an instrumented framework); status ERROR with `error.type` when the call failed.

Cardinality and secrets: attribute values come from bounded sets only. A refusal carries its
reason and status, never the `iss`, `kid` or client it names (read from a token that may be
forged: a value per attacker's request). An accepted token names its issuer (a configured one,
or the one the authorization server's answer names: at most `MAX_ISSUERS` distinct values, then
`_OTHER`). URLs are shown as scheme, host, port and path: never a userinfo or a query. No token,
secret or client identifier is ever an attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from . import __version__
from ._events import (
    Event,
    IntrospectionCalled,
    KeysFetched,
    RolesResolved,
    TokenAccepted,
    TokenRefused,
)
from ._otelvalues import (
    MAX_ISSUERS,
    Attributes,
    BoundedIssuers,
    Tally,
    accepted_attributes,
    error_type,
    refused_attributes,
    shown_url,
    url_attributes,
)
from ._server import ResourceServer

__all__ = ["MAX_ISSUERS", "error_type", "instrument"]

# Bucket boundaries (seconds): a verification spans a cache hit (under a microsecond) to a miss
# that waited for a key fetch; an upstream call is milliseconds to the deadline (the semantic
# conventions' HTTP client boundaries).
VERIFY_BUCKETS = (
    *(1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4),
    *(1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


def instrument(
    server: ResourceServer,
    *,
    meter_provider: MeterProvider | None = None,
    tracer_provider: TracerProvider | None = None,
    hit_durations: bool = False,
) -> Callable[[], None]:
    """Record `server`'s metrics and upstream spans; returns the function that stops it.

    The global providers are used unless others are given (without an SDK, those record
    nothing). Safe to call once per server; a server instrumented twice counts twice.
    `hit_durations=True` records verified-token cache hits in `bearerguard.verify.duration`
    too: an SDK histogram costs microseconds per measurement, several times the hit itself,
    so by default hits are only counted (`bearerguard.requests`, at no SDK cost per request).
    """
    meter = metrics.get_meter("bearerguard", __version__, meter_provider)
    tracer = trace.get_tracer("bearerguard", __version__, tracer_provider)
    recorder = _Recorder(meter, tracer, server, hit_durations=hit_durations)
    unsubscribe = server.events.subscribe(recorder, hits=True)

    def uninstrument() -> None:
        unsubscribe()
        recorder.stop()

    return uninstrument


class _Recorder:
    """The subscriber: one method per event kind, chosen by the event's type."""

    def __init__(
        self,
        meter: metrics.Meter,
        tracer: trace.Tracer,
        server: ResourceServer,
        *,
        hit_durations: bool,
    ) -> None:
        self._tracer = tracer
        self._server: ResourceServer | None = server
        self._issuers = BoundedIssuers(config.issuer for config in server.issuers)
        self._hit_durations = hit_durations
        # Per-request counts are kept here and reported when the reader collects: an SDK
        # counter's `add` costs microseconds (it cleans and hashes the attributes each time),
        # several times a cache hit; a tally costs a dict lookup under a lock.
        self._requests = Tally()
        self._accepted: dict[tuple[str, str, bool], list[Any]] = {}  # the tally's entries
        meter.create_observable_counter(
            "bearerguard.requests",
            [self._requests.observe],
            "{request}",
            "Tokens accepted and requests refused, by outcome and reason",
        )
        self._verify = meter.create_histogram(
            "bearerguard.verify.duration",
            "s",
            "Time spent on an accepted token, by cache hit or miss",
            explicit_bucket_boundaries_advisory=VERIFY_BUCKETS,
        )
        self._fetches = meter.create_counter(
            "bearerguard.keys.fetches", "{fetch}", "JWKS fetches (discovery included), by outcome"
        )
        self._fetch_duration = meter.create_histogram(
            "bearerguard.keys.fetch.duration",
            "s",
            "Duration of JWKS fetches (discovery included)",
            explicit_bucket_boundaries_advisory=UPSTREAM_BUCKETS,
        )
        self._calls = meter.create_counter(
            "bearerguard.introspection.calls", "{call}", "RFC 7662 introspection calls, by outcome"
        )
        self._call_duration = meter.create_histogram(
            "bearerguard.introspection.duration",
            "s",
            "Duration of RFC 7662 introspection calls",
            explicit_bucket_boundaries_advisory=UPSTREAM_BUCKETS,
        )
        self._resolutions = Tally()  # one per request whose token names role ids
        meter.create_observable_counter(
            "bearerguard.roles.resolutions",
            [self._resolutions.observe],
            "{resolution}",
            "Tokens whose role-ID scopes were resolved, by cache hit and outcome",
        )
        self._lookups = meter.create_counter(
            "bearerguard.roles.lookups", "{role}", "Role ids looked up (not in the role cache)"
        )
        self._roles_duration = meter.create_histogram(
            "bearerguard.roles.duration",
            "s",
            "Duration of role resolutions that looked roles up",
            explicit_bucket_boundaries_advisory=UPSTREAM_BUCKETS,
        )
        meter.create_observable_gauge(
            "bearerguard.cache.entries",
            [self._observe_caches],
            "{entry}",
            "Entries in each of the server's caches",
        )
        meter.create_observable_gauge(
            "bearerguard.store.up",
            [self._observe_store],
            "1",
            "1 while the server's shared store answers, 0 while it is down",
        )
        self._record: Mapping[type[Event], Callable[[Any], None]] = {
            TokenAccepted: self._token_accepted,
            TokenRefused: self._token_refused,
            KeysFetched: self._keys_fetched,
            IntrospectionCalled: self._introspection_called,
            RolesResolved: self._roles_resolved,
        }

    def __call__(self, event: Event) -> None:
        self._record[type(event)](event)

    def stop(self) -> None:
        self._server = None  # the gauge's callback stays registered (the API cannot remove it)

    def _token_accepted(self, event: TokenAccepted) -> None:
        # The hit path: one lookup by the event's own values, then the count.
        entry = self._accepted.get((event.source, event.issuer, event.cached))
        if entry is None:
            entry = self._accepted_entry(event)
        self._requests.add(entry)
        if event.duration is not None and (self._hit_durations or not event.cached):
            self._verify.record(event.duration, entry[0])

    def _accepted_entry(self, event: TokenAccepted) -> list[Any]:
        issuer = self._issuers.value(event.issuer)
        entry = self._requests.entry(
            (event.source, issuer, event.cached), accepted_attributes, event, issuer
        )
        if issuer == event.issuer:  # remembered only for issuers named as they are: bounded
            self._accepted[event.source, event.issuer, event.cached] = entry
        return entry

    def _token_refused(self, event: TokenRefused) -> None:
        # Never what the token names (`event.seen`'s issuer, kid, client): attacker-chosen.
        source = event.seen.source if event.seen is not None else None
        key = (event.error.reason, event.error.status_code, source)
        self._requests.add(self._requests.entry(key, refused_attributes, event))

    def _keys_fetched(self, event: KeysFetched) -> None:
        attributes = {"bearerguard.issuer": self._issuers.value(event.issuer)}
        attributes |= url_attributes(event.url)
        attributes["bearerguard.outcome"] = "loaded" if event.error is None else "error"
        if event.error is not None:
            attributes["error.type"] = error_type(event.error)
        self._fetches.add(1, attributes)
        self._fetch_duration.record(event.duration, attributes)
        span = attributes | {"bearerguard.keys.count": len(event.kids)}
        self._span("bearerguard.keys.fetch", "GET", event, span, event.error)

    def _introspection_called(self, event: IntrospectionCalled) -> None:
        attributes = url_attributes(event.url)
        if event.issuer is not None:
            attributes["bearerguard.issuer"] = self._issuers.value(event.issuer)
        attributes["bearerguard.outcome"] = event.outcome
        if event.status is not None:
            attributes["http.response.status_code"] = event.status
        failed = event.outcome == "error"
        if failed:
            attributes["error.type"] = error_type(event.error or "", event.status)
        self._calls.add(1, attributes)
        self._call_duration.record(event.duration, attributes)
        error = (event.error or "error") if failed else None
        self._span("bearerguard.introspection", "POST", event, attributes, error)

    def _roles_resolved(self, event: RolesResolved) -> None:
        attributes: Attributes = {
            "bearerguard.issuer": self._issuers.value(event.issuer),
            "bearerguard.cache.hit": event.looked_up == 0,
        }
        if event.error is not None:
            attributes["error.type"] = error_type(event.error)
        self._resolutions.add(self._resolutions.entry(tuple(attributes.values()), dict, attributes))
        if event.looked_up:
            self._lookups.add(event.looked_up, attributes)
            self._roles_duration.record(event.duration, attributes)

    def _span(
        self,
        name: str,
        method: str,
        event: KeysFetched | IntrospectionCalled,
        attributes: Attributes,
        error: str | None,
    ) -> None:
        """A CLIENT span of an upstream call that has ended, from its event's start and length."""
        attributes = attributes | {"http.request.method": method}
        if (url := shown_url(event.url)) is not None:
            attributes["url.full"] = url
        start = int(event.started * 1e9)
        span = self._tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, start_time=start
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=start + max(0, int(event.duration * 1e9)))

    def _observe_caches(self, options: CallbackOptions) -> Iterable[Observation]:
        server = self._server
        if server is None:
            return []
        return [
            Observation(size, {"bearerguard.cache.name": name})
            for name, size in server.cache_sizes().items()
        ]

    def _observe_store(self, options: CallbackOptions) -> Iterable[Observation]:
        server = self._server
        return [] if server is None else [Observation(int(server.store_status().up))]
