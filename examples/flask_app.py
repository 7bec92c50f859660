"""A Flask API protected by bearerguard. Run: `python examples/flask_app.py`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from bearerguard import ResourceServer
from bearerguard.integrations.flask import BearerGuard, current_token, require

REALM = "orders-api"


def create_app(server: ResourceServer, *, resource: str | None = None) -> Flask:
    app = Flask(__name__)
    BearerGuard(app, server=server, realm=REALM, resource=resource)

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/orders")
    @require("orders.read")
    def orders() -> dict[str, Any]:
        return {"client_id": current_token.client_id, "orders": [1, 2]}

    @app.get("/reports")
    @require(any_of=["reports.read", "admin"])
    def reports() -> dict[str, list[str]]:
        return {"reports": []}

    return app


if __name__ == "__main__":
    from _local import local_setup
    from werkzeug.serving import run_simple

    with local_setup() as (server, base):
        port = int(base.rsplit(":", 1)[1])
        run_simple("127.0.0.1", port, create_app(server, resource=base), threaded=True)
