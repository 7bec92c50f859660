"""A FastAPI API protected by bearerguard, lock in /docs. Run: `python examples/fastapi_app.py`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI

from bearerguard import AccessToken, ResourceServer
from bearerguard.integrations.fastapi import BearerAuth

REALM = "orders-api"


def create_app(server: ResourceServer, *, resource: str | None = None) -> FastAPI:
    auth = BearerAuth(server, realm=REALM, resource=resource)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.awarm()  # discovery finds the token endpoint for the OpenAPI document
        yield
        await server.aclose()

    app = FastAPI(lifespan=lifespan)
    auth.install(app)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/orders")
    async def orders(token: Annotated[AccessToken, auth.requires("orders.read")]) -> dict[str, Any]:
        return {"client_id": token.client_id, "orders": [1, 2]}

    @app.get("/reports", dependencies=[auth.requires(any_of=["reports.read", "admin"])])
    def reports() -> dict[str, list[str]]:
        return {"reports": []}

    return app


if __name__ == "__main__":
    from _local import local_setup

    with local_setup() as (server, base):
        port = int(base.rsplit(":", 1)[1])
        print(f"OpenAPI docs: {base}/docs", flush=True)
        uvicorn.run(
            create_app(server, resource=base), host="127.0.0.1", port=port, log_level="warning"
        )
