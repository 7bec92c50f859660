"""bearerguard's OpenTelemetry metrics, exported to Prometheus through the OTel SDK.

Run: `python examples/otel_prometheus.py` (needs `bearerguard[otel,starlette]`,
`opentelemetry-sdk`, `opentelemetry-exporter-prometheus` and uvicorn), call the API with the
printed curl lines, then `curl http://127.0.0.1:PORT/metrics`.

`/metrics` is served by the API itself here, as a public path, to keep the example to one port;
in production it usually sits on a port that only the scraper reaches
(`prometheus_client.start_http_server(9464)`).
"""

from __future__ import annotations

import uvicorn
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bearerguard import ResourceServer
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.integrations.starlette import get_token, requires
from bearerguard.otel import instrument

REALM = "orders-api"


@requires("orders.read")
async def orders(request: Request) -> JSONResponse:
    token = get_token(request)
    return JSONResponse({"client_id": token and token.client_id, "orders": [1, 2]})


def create_app(server: ResourceServer, *, resource: str | None = None) -> Starlette:
    # The SDK's Prometheus reader registers itself with `prometheus_client`'s registry;
    # `instrument` records the server's metrics through this provider (a global one, set with
    # `metrics.set_meter_provider`, would serve too).
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader()],
        resource=Resource.create({"service.name": REALM}),
    )
    instrument(server, meter_provider=provider)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    guard = Middleware(
        BearerAuthMiddleware,
        server=server,
        realm=REALM,
        resource=resource,
        public_paths=["/metrics"],
    )
    routes = [Route("/orders", orders), Route("/metrics", metrics)]
    return Starlette(routes=routes, middleware=[guard])


if __name__ == "__main__":
    from _local import local_setup

    with local_setup() as (server, base):
        port = int(base.rsplit(":", 1)[1])
        print(f"curl {base}/metrics", flush=True)
        app = create_app(server, resource=base)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
