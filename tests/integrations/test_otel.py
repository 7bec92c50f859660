"""`bearerguard.otel`: the figures a real server's traffic produces, read back with the SDK's
in-memory reader and exporter, sync and async; no secret or attacker-chosen value in them; an
instrumentation failure never fails a request."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from bearerguard import (
    AccessToken,
    BearerError,
    Introspection,
    InvalidTokenError,
    ResourceServer,
    RoleResolver,
    UpstreamUnavailableError,
)
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.events import Event, IntrospectionCalled, RolesResolved
from bearerguard.integrations.starlette import requires
from bearerguard.otel import MAX_ISSUERS, error_type, instrument
from bearerguard.testing import LocalIssuer

from ..conftest import Twin

Point = tuple[dict[str, Any], float]  # attributes, value (a counter's sum, a histogram's count)


class Telemetry:
    """An SDK meter provider and tracer provider that keep everything in memory."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def instrument(self, server: ResourceServer, **options: Any) -> Callable[[], None]:
        return instrument(
            server,
            meter_provider=self.meter_provider,
            tracer_provider=self.tracer_provider,
            **options,
        )

    def points(self) -> dict[str, list[Point]]:
        found: dict[str, list[Point]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        value = point.count if value is None else value  # type: ignore[union-attr]
                        found.setdefault(metric.name, []).append(
                            (dict(point.attributes or {}), value)
                        )
        return found

    def counts(self, name: str, *keys: str) -> Counter[tuple[Any, ...]]:
        """The values of `name`, summed by the values of the attributes `keys`."""
        totals: Counter[tuple[Any, ...]] = Counter()
        for attributes, value in self.points().get(name, []):
            totals[tuple(attributes.get(key) for key in keys)] += int(value)
        return totals

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def every_value(self) -> list[str]:
        """Every attribute value, name and status text of every point and span, as text."""
        texts: list[str] = []
        for name, points in self.points().items():
            texts.append(name)
            for attributes, _ in points:
                texts += [f"{key}={value}" for key, value in attributes.items()]
        for span in self.spans():
            texts += [span.name, str(span.status.description)]
            texts += [f"{key}={value!s}" for key, value in (span.attributes or {}).items()]
        return texts


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.meter_provider.shutdown()
    telemetry.tracer_provider.shutdown()


def refused(twin: Twin, server: ResourceServer, authorization: str | None) -> None:
    with pytest.raises((BearerError, UpstreamUnavailableError)):
        twin.authenticate(server, authorization)


def test_real_traffic_reads_back_exactly(
    local_issuer: LocalIssuer,
    local_issuer_factory: Callable[..., LocalIssuer],
    twin: Twin,
    telemetry: Telemetry,
) -> None:
    down = local_issuer_factory()
    down.go_down(status=503)
    server = ResourceServer([local_issuer.issuer_config(), down.issuer_config()])
    telemetry.instrument(server, hit_durations=True)
    tokens = [local_issuer.mint(scope="orders.read") for _ in range(3)]
    before = time.time()
    for _ in range(3):  # a miss (the first fetches the keys), then two hits, per token
        for token in tokens:
            assert twin.authenticate(server, "Bearer " + token).issuer == local_issuer.issuer
    refusals = [
        None,  # no token
        "Basic dXNlcjpwYXNz",  # another scheme: no bearer token either
        "Bearer " + local_issuer.mint(expires_in=-600),
        "Bearer " + local_issuer.mint(expires_in=-600),
        "Bearer " + local_issuer.mint(audience="https://other.example"),
        "Bearer " + local_issuer.mint(issuer="https://evil.example/t1"),
        "Bearer not.a.jwt",
        "Bearer " + down.mint(),  # its issuer is down: a 503
    ]
    for authorization in refusals:
        refused(twin, server, authorization)
    after = time.time()
    issuer, other = local_issuer.issuer, down.issuer

    requests = telemetry.counts(
        "bearerguard.requests",
        "bearerguard.outcome",
        "bearerguard.reason",
        "http.response.status_code",
        "bearerguard.token.source",
        "bearerguard.cache.hit",
        "bearerguard.issuer",
    )
    assert requests == {
        ("accepted", None, None, "jwt", False, issuer): 3,
        ("accepted", None, None, "jwt", True, issuer): 6,
        ("refused", "MISSING", 401, None, None, None): 2,
        ("refused", "EXPIRED", 401, "jwt", None, None): 2,
        ("refused", "AUDIENCE", 401, "jwt", None, None): 1,
        ("refused", "UNKNOWN_ISSUER", 401, "unverified jwt", None, None): 1,
        ("refused", "MALFORMED", 401, None, None, None): 1,
        ("refused", "UPSTREAM", 503, "unverified jwt", None, None): 1,
    }
    durations = telemetry.counts("bearerguard.verify.duration", "bearerguard.cache.hit")
    assert durations == {(False,): 3, (True,): 6}
    fetch_keys = ("bearerguard.issuer", "bearerguard.outcome", "error.type", "server.address")
    expected = {(issuer, "loaded", None, "127.0.0.1"): 1, (other, "error", "503", "127.0.0.1"): 1}
    assert telemetry.counts("bearerguard.keys.fetches", *fetch_keys) == expected
    assert telemetry.counts("bearerguard.keys.fetch.duration", *fetch_keys) == expected
    keys_held = len(local_issuer.jwks()["keys"])  # `other` is down: none of its keys
    assert telemetry.counts("bearerguard.cache.entries", "bearerguard.cache.name") == {
        ("tokens",): 3,
        ("keys",): keys_held,
    }

    loaded, failed = sorted(telemetry.spans(), key=lambda span: span.status.status_code.value)
    for span in loaded, failed:
        assert span.name == "bearerguard.keys.fetch" and span.kind is SpanKind.CLIENT
        assert span.start_time is not None and span.end_time is not None
        assert before * 1e9 <= span.start_time <= span.end_time <= after * 1e9
        assert span.attributes is not None and span.attributes["http.request.method"] == "GET"
    assert loaded.status.status_code is StatusCode.UNSET
    assert loaded.attributes is not None and loaded.attributes["url.full"] == local_issuer.jwks_uri
    assert loaded.attributes["bearerguard.keys.count"] == len(local_issuer.jwks()["keys"])
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["error.type"] == "503"
    assert failed.attributes["server.port"] == down.port


def test_upstream_spans_are_children_of_the_current_span(
    local_issuer: LocalIssuer, twin: Twin, telemetry: Telemetry
) -> None:
    server = ResourceServer(local_issuer.issuer_config())
    telemetry.instrument(server)
    tracer = telemetry.tracer_provider.get_tracer("test")
    header = "Bearer " + local_issuer.mint()

    async def arequest() -> AccessToken:
        with tracer.start_as_current_span("request"):
            return await server.aauthenticate(header)

    if twin.portal is None:
        with tracer.start_as_current_span("request"):
            server.authenticate(header)
    else:
        twin.portal.call(arequest)
        twin.portal.call(server.aclose)
    fetch, request = telemetry.spans()
    assert request.name == "request" and fetch.name == "bearerguard.keys.fetch"
    assert fetch.parent is not None and request.context is not None
    assert fetch.parent.span_id == request.context.span_id
    assert fetch.context is not None and fetch.context.trace_id == request.context.trace_id
    server.close()


def test_introspection_and_roles_events(local_issuer: LocalIssuer, telemetry: Telemetry) -> None:
    # Synthetic events, as the server will emit them (see _events): the figures and the span.
    server = ResourceServer(local_issuer.issuer_config())
    telemetry.instrument(server)
    url = "https://as.example:8443/introspect?…"  # redacted by the emitter: shown without it
    started = time.time()
    events: list[Event] = [
        IntrospectionCalled("https://as.example", url, "active", 200, started, 0.020),
        IntrospectionCalled("https://as.example", url, "active", 200, started, 0.030),
        IntrospectionCalled("https://as.example", url, "inactive", 200, started, 0.010),
        IntrospectionCalled("https://as.example", url, "error", 503, started, 0.5, "HTTP 503"),
        IntrospectionCalled("https://as.example", url, "error", None, started, 5.0, "ReadTimeout"),
        RolesResolved(local_issuer.issuer, roles=2, looked_up=0),
        RolesResolved(local_issuer.issuer, roles=3, looked_up=2, duration=0.01),
        RolesResolved(local_issuer.issuer, roles=1, looked_up=1, error="HTTP 500", duration=0.02),
    ]
    for event in events:
        server.events.emit(event)
    keys = ("bearerguard.outcome", "http.response.status_code", "error.type", "server.address")
    calls = {
        ("active", 200, None, "as.example"): 2,
        ("inactive", 200, None, "as.example"): 1,
        ("error", 503, "503", "as.example"): 1,
        ("error", None, "ReadTimeout", "as.example"): 1,
    }
    assert telemetry.counts("bearerguard.introspection.calls", *keys) == calls
    assert telemetry.counts("bearerguard.introspection.duration", *keys) == calls
    (_, histogram), *_ = [
        point
        for point in telemetry.points()["bearerguard.introspection.duration"]
        if point[0]["bearerguard.outcome"] == "active"
    ]
    assert histogram == 2
    roles = ("bearerguard.cache.hit", "error.type")
    assert telemetry.counts("bearerguard.roles.resolutions", *roles) == {
        (True, None): 1,
        (False, None): 1,
        (False, "500"): 1,
    }
    assert telemetry.counts("bearerguard.roles.lookups", *roles) == {
        (False, None): 2,
        (False, "500"): 1,
    }
    assert telemetry.counts("bearerguard.roles.duration", *roles) == {
        (False, None): 1,
        (False, "500"): 1,
    }
    spans = telemetry.spans()
    assert [span.name for span in spans] == ["bearerguard.introspection"] * 5
    assert [span.status.status_code for span in spans] == [StatusCode.UNSET] * 3 + [
        StatusCode.ERROR
    ] * 2
    first = spans[0]
    assert first.attributes is not None
    assert first.attributes["url.full"] == "https://as.example:8443/introspect"
    assert first.attributes["server.port"] == 8443
    assert first.attributes["http.request.method"] == "POST"
    assert first.start_time == int(started * 1e9)
    assert first.end_time == int(started * 1e9) + int(0.020 * 1e9)
    server.close()


def test_no_token_secret_or_query_in_any_attribute(
    local_issuer: LocalIssuer,
    local_issuer_factory: Callable[..., LocalIssuer],
    twin: Twin,
    telemetry: Telemetry,
) -> None:
    query = "api_key=s3cr3t-query-value"
    down = local_issuer_factory()
    down.go_down(status=503)
    server = ResourceServer(
        [
            local_issuer.issuer_config(jwks_uri=f"{local_issuer.jwks_uri}?{query}"),
            down.issuer_config(jwks_uri=f"{down.jwks_uri}?{query}"),
        ]
    )
    telemetry.instrument(server)
    forged_issuer = "https://attacker.example/unique-iss-7f3a"
    tokens = [
        local_issuer.mint(),
        local_issuer.mint(expires_in=-600),
        local_issuer.mint(issuer=forged_issuer, client_id="attacker-client-9c1"),
        local_issuer.mint(headers={"kid": "secret-kid-31d"}),
        down.mint(),
        "opaque-token-" + "x" * 40,
    ]
    for token in tokens:
        for _ in range(2):
            with contextlib.suppress(BearerError, UpstreamUnavailableError):
                twin.authenticate(server, "Bearer " + token)
    server.events.emit(
        IntrospectionCalled(
            None, f"https://as.example/introspect?{query}", "error", 401, 0.0, 0.1, "HTTP 401"
        )
    )
    texts = telemetry.every_value()
    assert any("url.full=" in text for text in texts)  # URLs are there, without their query
    secrets = [*tokens, query, "s3cr3t", forged_issuer, "attacker-client-9c1", "secret-kid-31d"]
    secrets += [part for token in tokens for part in token.split(".") if len(part) > 20]
    leaked = [(secret, text) for secret in secrets for text in texts if secret in text]
    assert not leaked


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(issuers=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=80))
def test_attribute_sets_stay_bounded_whatever_tokens_name(
    local_issuer_session: LocalIssuer, issuers: list[str]
) -> None:
    # Refusals never carry what an unverified token names; issuers that an authorization
    # server's answers name are kept up to MAX_ISSUERS, then `_OTHER`.
    telemetry = Telemetry()
    server = ResourceServer(local_issuer_session.issuer_config())
    telemetry.instrument(server)
    for iss in issuers:
        with pytest.raises(InvalidTokenError):
            server.authenticate("Bearer " + local_issuer_session.mint(issuer=iss))
        server.events.emit(IntrospectionCalled(iss, None, "active", 200, 0.0, 0.01))
    requests = telemetry.points()["bearerguard.requests"]
    assert len(requests) == 1  # one attribute set: UNKNOWN_ISSUER, 401, unverified jwt
    assert requests[0][1] == len(issuers)
    named = {
        a["bearerguard.issuer"] for a, _ in telemetry.points()["bearerguard.introspection.calls"]
    }
    assert len(named) <= MAX_ISSUERS + 1
    assert named <= {*issuers, "_OTHER"}
    assert ("_OTHER" in named) == (len(set(issuers)) > MAX_ISSUERS)
    server.close()
    telemetry.meter_provider.shutdown()


class _Broken:
    """An instrument, meter or tracer whose every method raises."""

    def __getattr__(self, name: str) -> Any:
        def broken(*args: Any, **kwargs: Any) -> Any:
            if name.startswith("create_") or name in {"get_meter", "get_tracer"}:
                return _Broken()
            raise RuntimeError(f"broken {name}")

        return broken


def test_broken_instrumentation_never_fails_a_request(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    server = ResourceServer(local_issuer.issuer_config())
    broken: Any = _Broken()
    instrument(server, meter_provider=broken, tracer_provider=broken)
    token = local_issuer.mint()
    with caplog.at_level(logging.ERROR, logger="bearerguard.events"):
        for _ in range(3):
            assert twin.authenticate(server, "Bearer " + token).issuer == local_issuer.issuer
        with pytest.raises(InvalidTokenError):
            twin.authenticate(server, "Bearer " + local_issuer.mint(expires_in=-600))
    assert any("raised" in record.getMessage() for record in caplog.records)


def test_uninstrument_stops_recording(local_issuer: LocalIssuer, telemetry: Telemetry) -> None:
    server = ResourceServer(local_issuer.issuer_config())
    stop = telemetry.instrument(server)
    token = local_issuer.mint()
    server.authenticate("Bearer " + token)
    server.authenticate("Bearer " + token)
    stop()
    server.authenticate("Bearer " + token)
    server.authenticate("Bearer " + token)
    counted = telemetry.counts("bearerguard.requests", "bearerguard.cache.hit")
    assert counted == {(False,): 1, (True,): 1}
    # By default a hit is counted, its duration not recorded (an SDK histogram costs more).
    assert telemetry.counts("bearerguard.verify.duration", "bearerguard.cache.hit") == {(False,): 1}
    assert "bearerguard.cache.entries" not in telemetry.points()
    assert not server.events.hits and server.events.accepted  # the log subscriber stays
    server.close()


def test_global_providers_are_the_default(local_issuer: LocalIssuer) -> None:
    # The test session installs no global SDK: the API's providers record nothing.
    server = ResourceServer(local_issuer.issuer_config())
    stop = instrument(server)
    assert server.events.hits and server.events.keys
    token = local_issuer.mint()
    for _ in range(2):
        assert server.authenticate("Bearer " + token).issuer == local_issuer.issuer
    stop()
    assert not server.events.hits
    server.close()


@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        ("http://as/jwks: HTTP 503, body is not a JSON object", None, "503"),
        (
            "http://as/jwks: HTTP 200, body is not a JSON object (too deep)",
            None,
            "invalid_response",
        ),
        ("http://as/jwks: ConnectError", None, "ConnectError"),
        ("http://as/jwks: InvalidURL", None, "InvalidURL"),
        ("the AS said SomethingError", None, "_OTHER"),
        ("Timeout: the upstream deadline passed", None, "Timeout"),
        ("metadata names a different issuer", None, "_OTHER"),
        ("anything", 401, "401"),
        ("HTTP 404; HTTP 503", None, "404"),
    ],
)
def test_error_type(error: str, status: int | None, expected: str) -> None:
    assert error_type(error, status) == expected


@given(text=st.text(max_size=200), status=st.none() | st.integers(0, 999))
def test_error_type_is_one_of_a_bounded_set(text: str, status: int | None) -> None:
    # Whatever a failure's text says (it may quote an upstream answer), error.type is a status,
    # a transport exception's name, or one of two fixed values.
    value = error_type(text, status)
    assert (
        re.fullmatch(r"[1-9][0-9]{2}", value)
        or value in {"invalid_response", "_OTHER", "Timeout"}
        or (value in dir(httpx) and issubclass(getattr(httpx, value), Exception))
    ), value


def test_importing_bearerguard_does_not_import_opentelemetry() -> None:
    code = (
        "import sys, bearerguard, bearerguard.asgi, bearerguard.wsgi\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603


def test_prometheus_example_serves_the_metrics() -> None:
    examples = Path(__file__).parents[2] / "examples"
    env = {**os.environ, "PYTHONPATH": str(examples.parent / "src")}
    process = subprocess.Popen(  # noqa: S603 - our own example, by path
        [sys.executable, str(examples / "otel_prometheus.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(8)]
        match = re.search(r"curl -i (\S+)/orders -H 'Authorization: (Bearer \S+)'", lines[3])
        assert match, lines
        base, authorization = match.groups()
        assert lines[7].strip() == f"curl {base}/metrics"
        deadline = time.monotonic() + 20
        while True:
            try:
                first = httpx.get(f"{base}/orders", headers={"authorization": authorization})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the example did not start in 20 s"
                time.sleep(0.1)
        again = httpx.get(f"{base}/orders", headers={"authorization": authorization})
        assert (first.status_code, again.status_code) == (200, 200)
        assert httpx.get(f"{base}/orders").status_code == 401
        scraped = httpx.get(f"{base}/metrics")
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
    assert scraped.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name.startswith("bearerguard_")
    }

    def value(name: str, **labels: str) -> float:
        found = [
            v
            for (n, lbls), v in samples.items()
            if n == name and labels.items() <= dict(lbls).items()
        ]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    requests = "bearerguard_requests_total"
    assert value(requests, bearerguard_outcome="accepted", bearerguard_cache_hit="false") == 1
    assert value(requests, bearerguard_outcome="accepted", bearerguard_cache_hit="true") == 1
    assert value(requests, bearerguard_reason="MISSING", http_response_status_code="401") == 1
    assert value("bearerguard_keys_fetches_total", bearerguard_outcome="loaded") == 1
    assert value("bearerguard_cache_entries", bearerguard_cache_name="tokens") == 1
    # Hits are counted; their durations are recorded only with hit_durations=True.
    assert value("bearerguard_verify_duration_seconds_count", bearerguard_cache_hit="false") == 1
    assert not [
        name
        for name, labels in samples
        if ("bearerguard_cache_hit", "true") in labels and name.startswith("bearerguard_verify")
    ]


def test_a_scope_refusal_counts_after_the_acceptance(
    local_issuer: LocalIssuer, telemetry: Telemetry
) -> None:
    # What the README says: a 403 for a missing scope is one accepted token and one refusal.
    @requires("admin")
    async def admin(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    server = ResourceServer(local_issuer.issuer_config())
    telemetry.instrument(server)
    app = Starlette(
        routes=[Route("/admin", admin)],
        middleware=[Middleware(BearerAuthMiddleware, server=server)],
    )
    with TestClient(app) as client:
        token = local_issuer.mint(scope="orders.read")
        answer = client.get("/admin", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    keys = ("bearerguard.outcome", "bearerguard.reason", "http.response.status_code")
    assert telemetry.counts("bearerguard.requests", *keys) == {
        ("accepted", None, None): 1,
        ("refused", "SCOPE", 403): 1,
    }
    server.close()


def test_real_introspection_and_roles_read_back(
    local_issuer: LocalIssuer, twin: Twin, telemetry: Telemetry
) -> None:
    privileges = {"2": ["Read Computers"], "5": ["Read Policies"]}
    resolver = RoleResolver(lambda role_id: privileges[role_id], ttl=3600)
    server = ResourceServer(
        local_issuer.issuer_config(roles=resolver),
        introspection=Introspection(
            endpoint=local_issuer.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
            allow_http=True,
        ),
    )
    telemetry.instrument(server)
    role_token = local_issuer.mint(scope="api-role:2 api-role:5")
    for _ in range(2):  # both roles looked up, then both from the role cache
        assert "Read Policies" in twin.authenticate(server, f"Bearer {role_token}").scopes
    active = local_issuer.mint_opaque(scope="orders.read")
    for _ in range(2):  # one call, then the introspection cache
        assert twin.authenticate(server, f"Bearer {active}").source == "introspection"
    refused(twin, server, "Bearer " + "never-issued-" + "x" * 30)  # active: false
    local_issuer.go_down(status=503)
    refused(twin, server, "Bearer " + local_issuer.mint_opaque())  # the AS is down: a 503

    keys = ("bearerguard.outcome", "http.response.status_code", "error.type", "server.address")
    calls = {
        ("active", 200, None, "127.0.0.1"): 1,
        ("inactive", 200, None, "127.0.0.1"): 1,
        ("error", 503, "503", "127.0.0.1"): 1,
    }
    assert telemetry.counts("bearerguard.introspection.calls", *keys) == calls
    assert telemetry.counts("bearerguard.introspection.duration", *keys) == calls
    spans = [span for span in telemetry.spans() if span.name == "bearerguard.introspection"]
    assert [span.status.status_code for span in spans] == [StatusCode.UNSET] * 2 + [
        StatusCode.ERROR
    ]
    assert all(
        span.attributes is not None
        and span.attributes["url.full"] == local_issuer.introspection_endpoint
        for span in spans
    )
    roles = ("bearerguard.issuer", "bearerguard.cache.hit", "error.type")
    issuer = local_issuer.issuer
    assert telemetry.counts("bearerguard.roles.resolutions", *roles) == {
        (issuer, False, None): 1,
        (issuer, True, None): 1,
    }
    assert telemetry.counts("bearerguard.roles.lookups", *roles) == {(issuer, False, None): 2}
    requests = telemetry.counts(
        "bearerguard.requests",
        "bearerguard.outcome",
        "bearerguard.token.source",
        "bearerguard.reason",
        "http.response.status_code",
    )
    assert requests[("accepted", "introspection", None, None)] == 2
    assert requests[("accepted", "jwt", None, None)] == 2
    assert requests[("refused", None, "INACTIVE", 401)] == 1
    assert requests[("refused", None, "UPSTREAM", 503)] == 1
    server.close()
    resolver.close()
