"""What the events seam and OpenTelemetry cost a verified-token cache hit.

`authenticate()` hits over a full default cache (HS256 tokens: a hit does not depend on the
algorithm), in the same rounds, each call on a fresh header string, by four servers alike but
for their subscribers: the default (the log subscriber, which does not ask for hits: today's
main), none at all (`events=Events()`), `bearerguard.otel.instrument()` with the OpenTelemetry
SDK (a `MeterProvider` with an in-memory reader, never collected while measuring; a
`TracerProvider`: a hit makes no span), `instrument()` with the API's no-op providers (what an
application that installed no SDK pays), and `instrument(hit_durations=True)` with the SDK (each
hit also recorded in the verify-duration histogram).
"""

from __future__ import annotations

from collections.abc import Iterator

from common import AUDIENCE, config, filled, mint, no_io_guard, warmed
from harness import Case, Delta, Group, Pair, Settings, register
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracerProvider

from bearerguard import Events, ResourceServer
from bearerguard.otel import instrument
from bearerguard.testing import LocalIssuer

ALG = "HS256"


@register("events.otel", "A cache hit: no subscriber, the default log one, instrument() (OTel).")
def _otel(settings: Settings) -> Iterator[Group]:
    with LocalIssuer(algorithms=(ALG,), audience=AUDIENCE) as issuer:
        tokens = mint(issuer, ALG, settings.cache_size)
        reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[reader])
        servers: dict[str, ResourceServer] = {
            "authenticate() hit, default subscribers (main)": warmed(config(issuer, ALG)),
            "authenticate() hit, no subscriber": warmed(config(issuer, ALG), events=Events()),
            "authenticate() hit, instrument(), SDK": warmed(config(issuer, ALG)),
            "authenticate() hit, instrument(), no-op API": warmed(config(issuer, ALG)),
            "authenticate() hit, instrument(hit_durations=True), SDK": warmed(config(issuer, ALG)),
        }
        names = list(servers)
        instrument(
            servers[names[2]], meter_provider=meter_provider, tracer_provider=TracerProvider()
        )
        instrument(
            servers[names[3]],
            meter_provider=NoOpMeterProvider(),
            tracer_provider=NoOpTracerProvider(),
        )
        instrument(
            servers[names[4]],
            meter_provider=meter_provider,
            tracer_provider=TracerProvider(),
            hit_durations=True,
        )
        cases = [
            Case(name, server.authenticate, [f"Bearer {token}" for token in held])
            for name, server in servers.items()
            for held in [filled(server, tokens, settings, len(tokens))]
        ]
        main, bare, sdk, noop, durations = names
        yield Group(
            cases=cases,
            checks=[
                Pair("no subscriber / main", bare, main),
                Pair("instrument() SDK / main", sdk, main),
                Pair("instrument() no-op API / main", noop, main),
                Delta("instrument() SDK - main", sdk, main),
                Delta("instrument() no-op API - main", noop, main),
                Delta("instrument(hit_durations=True) SDK - main", durations, main),
                Delta("main - no subscriber", main, bare),
            ],
            notes=[f"{len(tokens)} {ALG} tokens cached per server (the default cache, full)"],
            after=no_io_guard([issuer]),
        )
        for server in servers.values():
            server.close()
        meter_provider.shutdown()
