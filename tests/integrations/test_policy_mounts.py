"""A policy table for some routes only: the middleware in front of a mounted app (Starlette and
FastAPI `Mount`, a server's root path, werkzeug's `DispatcherMiddleware`) or of one route judges
the path below its mount point, as the router routes it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from bearerguard import PolicyTable, ResourceServer
from bearerguard._urls import route_path
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

# Relative to the mount point: what the mounted app's own routes say.
ADMIN = PolicyTable.from_scopes(
    {"admin.read": [("GET", r"/users(/\d+)?")], "admin.write": [("POST", r"/users")]}
)


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.url.path)


def _bearer(issuer: LocalIssuer, *scopes: str) -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.mint(scope=list(scopes))}"}


def test_a_policy_on_a_starlette_mount_only(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    admin = Starlette(
        routes=[Route("/users", hello, methods=["GET", "POST"]), Route("/users/{n:int}", hello)]
    )
    guarded = BearerAuthMiddleware(admin, server, policy=ADMIN, public_paths=["/users/0"])
    app = Starlette(routes=[Route("/open", hello), Mount("/admin", app=guarded)])
    with TestClient(app) as client:
        assert client.get("/open").text == "/open"  # outside the mount: no token asked
        assert client.get("/admin/users").status_code == 401
        reader = _bearer(local_issuer, "admin.read")
        assert client.get("/admin/users", headers=reader).text == "/admin/users"
        assert client.get("/admin/users/7", headers=reader).status_code == 200
        refused = client.post("/admin/users", headers=reader)
        assert refused.status_code == 403
        assert 'scope="admin.write"' in refused.headers["www-authenticate"]
        writer = _bearer(local_issuer, "admin.write")
        assert client.post("/admin/users", headers=writer).status_code == 200
        assert client.get("/admin/users/0").status_code == 200  # public below the mount
        assert client.get("/admin/other", headers=reader).status_code == 403  # default deny


def test_a_policy_on_a_fastapi_sub_application(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    admin = FastAPI()

    @admin.get("/users")
    async def users() -> list[str]:
        return ["ada"]

    admin.add_middleware(BearerAuthMiddleware, server=server, policy=ADMIN)
    app = FastAPI()

    @app.get("/open")
    async def open_() -> str:
        return "open"

    app.mount("/admin", admin)
    with TestClient(app) as client:
        assert client.get("/open").json() == "open"
        assert client.get("/admin/users").status_code == 401
        assert client.get("/admin/users", headers=_bearer(local_issuer, "admin.read")).json() == [
            "ada"
        ]
        assert client.get("/admin/users", headers=_bearer(local_issuer, "x")).status_code == 403


def test_a_policy_on_one_starlette_route(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    table = PolicyTable.from_scopes({"reports.read": [("GET", r"/reports")]})
    guarded = BearerAuthMiddleware(PlainTextResponse("report"), server, policy=table)
    app = Starlette(routes=[Route("/open", hello), Route("/reports", guarded)])
    with TestClient(app) as client:
        assert client.get("/open").status_code == 200
        assert client.get("/reports").status_code == 401
        assert client.get("/reports", headers=_bearer(local_issuer, "x")).status_code == 403
        assert client.get("/reports", headers=_bearer(local_issuer, "reports.read")).text == (
            "report"
        )


def test_a_server_root_path_is_not_part_of_the_routes(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    # uvicorn --root-path /api: path "/api/users", root_path "/api"; the router routes "/users".
    admin = Starlette(routes=[Route("/users", hello)])
    app = BearerAuthMiddleware(admin, server, policy=ADMIN)
    with TestClient(app, root_path="/api") as client:
        assert client.get(
            "/api/users", headers=_bearer(local_issuer, "admin.read")
        ).status_code == (200)
        assert client.get("/api/users", headers=_bearer(local_issuer, "x")).status_code == 403


def test_a_policy_on_a_wsgi_mount(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    admin = Flask("admin")
    admin.add_url_rule("/users", "users", lambda: "users", methods=["GET", "POST"])
    admin.wsgi_app = BearerAuthWSGIMiddleware(admin.wsgi_app, server, policy=ADMIN)  # type: ignore[method-assign]
    site = Flask("site")
    site.add_url_rule("/open", "open", lambda: "open")
    site.wsgi_app = DispatcherMiddleware(site.wsgi_app, {"/admin": admin})  # type: ignore[method-assign]
    client = site.test_client()
    assert client.get("/open").data == b"open"
    assert client.get("/admin/users").status_code == 401
    assert client.get("/admin/users", headers=_bearer(local_issuer, "admin.read")).data == b"users"
    assert client.post("/admin/users", headers=_bearer(local_issuer, "admin.read")).status_code == (
        403
    )


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("/a/b", "", "/a/b"),
        ("/a/b", None, "/a/b"),
        ("/a/b", "/a", "/b"),
        ("/a", "/a", "/"),
        ("/ab", "/a", "/ab"),  # not below /a: the router routes it whole
        ("/x/b", "/a", "/x/b"),
    ],
)
def test_route_path(path: str, root: Any, expected: str) -> None:
    assert route_path(path, root) == expected
