"""A Litestar API protected by bearerguard. Run: `python examples/litestar_app.py`."""

from __future__ import annotations

from typing import Any

import uvicorn
from litestar import Litestar, Request, get
from litestar.datastructures import State

from bearerguard import AccessToken, ResourceServer
from bearerguard.asgi import TokenUser
from bearerguard.integrations.litestar import BearerAuthPlugin, requires

REALM = "orders-api"


@get("/health", sync_to_thread=False)
def health() -> dict[str, bool]:
    return {"ok": True}


@get("/orders", guards=[requires("orders.read")])
async def orders(request: Request[TokenUser, AccessToken, State]) -> dict[str, Any]:
    return {"client_id": request.auth.client_id, "orders": [1, 2]}


@get("/reports", guards=[requires(any_of=["reports.read", "admin"])], sync_to_thread=False)
def reports() -> dict[str, list[str]]:  # sync handlers work too
    return {"reports": []}


def create_app(server: ResourceServer, *, resource: str | None = None) -> Litestar:
    plugin = BearerAuthPlugin(server, realm=REALM, resource=resource, public_paths=["/health"])
    return Litestar([health, orders, reports], plugins=[plugin])


if __name__ == "__main__":
    from _local import local_setup

    with local_setup() as (server, base):
        port = int(base.rsplit(":", 1)[1])
        app = create_app(server, resource=base)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
