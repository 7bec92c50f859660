"""A Quart API protected by bearerguard. Run: `python examples/quart_app.py`."""

from __future__ import annotations

from typing import Any

import uvicorn
from quart import Quart

from bearerguard import ResourceServer
from bearerguard.integrations.quart import BearerGuard, current_token, require

REALM = "orders-api"


def create_app(server: ResourceServer, *, resource: str | None = None) -> Quart:
    app = Quart(__name__)
    BearerGuard(app, server=server, realm=REALM, resource=resource)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/orders")
    @require("orders.read")
    async def orders() -> dict[str, Any]:
        return {"client_id": current_token.client_id, "orders": [1, 2]}

    @app.get("/reports")
    @require(any_of=["reports.read", "admin"])
    async def reports() -> dict[str, list[str]]:
        return {"reports": []}

    return app


if __name__ == "__main__":
    from _local import local_setup

    with local_setup() as (server, base):
        port = int(base.rsplit(":", 1)[1])
        app = create_app(server, resource=base)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
