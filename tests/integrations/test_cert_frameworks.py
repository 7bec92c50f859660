"""Certificate-bound tokens (RFC 8705) through the integrations: the ASGI `tls` extension read by
the middleware, and a trusted proxy's certificate header through FastAPI (the middleware's),
Flask's `BEARERGUARD_PROXIES` and Django's `BEARERGUARD["PROXIES"]` (one `Guard` option: every
integration reads the request through the same adapters)."""

from typing import Annotated, Any

import anyio
import pytest
from django.test import Client as DjangoClient
from fastapi import FastAPI, Security
from flask import Flask
from starlette.testclient import TestClient

from bearerguard import AccessToken, ConfigurationError, ResourceServer, TrustedProxies
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.integrations.fastapi import BearerAuth
from bearerguard.integrations.flask import BearerGuard, require
from bearerguard.testing import LocalIssuer, client_certificate

from ..helpers import aclose_on
from . import django_project
from .test_django import configured

CERT, THIEF = client_certificate("owner"), client_certificate("thief")


async def ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def asgi_status(app: Any, token: str, chain: list[str] | None) -> int:
    """One request through `app`, whose server passes `chain` in the ASGI `tls` extension."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "path": "/orders",
        "raw_path": b"/orders",
        "query_string": b"",
        "headers": [(b"host", b"api.test"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("198.51.100.4", 50000),
    }
    if chain is not None:
        scope["extensions"] = {"tls": {"server_cert": None, "client_cert_chain": chain}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    return int(sent[0]["status"])


@pytest.mark.parametrize("dpop", ["off", "allowed"])
def test_the_asgi_tls_extension(local_issuer: LocalIssuer, dpop: str) -> None:
    token = local_issuer.mint(x5t_s256=CERT.x5t_s256)
    server = ResourceServer(local_issuer.issuer_config(), dpop=dpop)  # type: ignore[arg-type]
    app = BearerAuthMiddleware(ok, server)
    assert asgi_status(app, token, [CERT.pem, THIEF.pem]) == 200  # the chain's first: the client
    assert asgi_status(app, token, [CERT.pem]) == 200  # a hit, checked again
    assert asgi_status(app, token, [THIEF.pem, CERT.pem]) == 401
    assert asgi_status(app, token, []) == 401
    assert asgi_status(app, token, None) == 401
    # Behind a trusted proxy with a certificate header, the connection's certificate is the
    # proxy's own: never taken for the client's.
    proxied = BearerAuthMiddleware(
        ok, server, proxies=TrustedProxies(["198.51.100.0/24"], certificate_header="x-cert")
    )
    assert asgi_status(proxied, token, [CERT.pem]) == 401


HEADER = TrustedProxies(["*"], certificate_header="x-client-cert")  # the test clients' peers


def test_fastapi_behind_the_middleware_with_proxies(local_issuer: LocalIssuer) -> None:
    """FastAPI's `BearerAuth` takes the token the ASGI middleware (with `proxies=`) verified."""
    server = ResourceServer(local_issuer.issuer_config())
    auth = BearerAuth(server)
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, server=server, proxies=HEADER)

    @app.get("/orders")
    async def orders(token: Annotated[AccessToken, Security(auth, scopes=["orders.read"])]) -> Any:
        return {"client": token.client_id}

    token = local_issuer.mint(x5t_s256=CERT.x5t_s256, scope="orders.read")
    bearer = {"authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        assert client.get("/orders", headers=bearer | {"x-client-cert": CERT.xfcc()}).is_success
        assert (
            client.get("/orders", headers=bearer | {"x-client-cert": THIEF.xfcc()}).status_code
            == 401
        )
        assert client.get("/orders", headers=bearer).status_code == 401
        aclose_on(client, server)


def test_fastapi_bearer_auth_with_proxies(local_issuer: LocalIssuer) -> None:
    """`BearerAuth(proxies=...)` alone (no middleware): the trusted proxy's certificate header."""
    server = ResourceServer(local_issuer.issuer_config())
    auth = BearerAuth(
        server, proxies=TrustedProxies(["127.0.0.1"], certificate_header="x-client-cert")
    )
    app = FastAPI()

    @app.get("/orders")
    async def orders(token: Annotated[AccessToken, auth.requires("orders.read")]) -> Any:
        return {"client": token.client_id}

    token = local_issuer.mint(x5t_s256=CERT.x5t_s256, scope="orders.read")
    bearer = {"authorization": f"Bearer {token}"}
    with TestClient(app, client=("127.0.0.1", 50000)) as client:  # the proxy
        assert client.get("/orders", headers=bearer | {"x-client-cert": CERT.xfcc()}).is_success
        thief = bearer | {"x-client-cert": THIEF.xfcc()}
        assert client.get("/orders", headers=thief).status_code == 401
        aclose_on(client, server)
    with TestClient(app, client=("198.51.100.4", 50000)) as client:  # not the proxy: ignored
        assert (
            client.get("/orders", headers=bearer | {"x-client-cert": CERT.xfcc()}).status_code
            == 401
        )
        aclose_on(client, server)


def test_flask_proxies_setting(local_issuer: LocalIssuer) -> None:
    with ResourceServer(local_issuer.issuer_config()) as server:
        app = Flask(__name__)
        app.config["BEARERGUARD_PROXIES"] = TrustedProxies(
            ["127.0.0.1"], certificate_header="X-Client-Cert"
        )
        BearerGuard(app, server=server)

        @app.get("/orders")
        @require("orders.read")
        def orders() -> Any:
            return {"ok": True}

        client = app.test_client()  # Werkzeug's: REMOTE_ADDR 127.0.0.1
        token = local_issuer.mint(x5t_s256=CERT.x5t_s256, scope="orders.read")
        headers = {"authorization": f"Bearer {token}"}
        assert (
            client.get(
                "/orders", headers=headers | {"x-client-cert": CERT.escaped_pem()}
            ).status_code
            == 200
        )
        assert (
            client.get(
                "/orders", headers=headers | {"x-client-cert": THIEF.escaped_pem()}
            ).status_code
            == 401
        )
        other = {"REMOTE_ADDR": "198.51.100.4"}  # not the proxy: its header is not believed
        cert = {"x-client-cert": CERT.escaped_pem()}
        assert client.get("/orders", headers=headers | cert, environ_base=other).status_code == 401
        app.config["BEARERGUARD_PROXIES"] = "127.0.0.1"
        with pytest.raises(ConfigurationError, match="PROXIES"):
            BearerGuard(app, server=server)


def test_django_proxies_setting(local_issuer: LocalIssuer) -> None:
    assert django_project.MIDDLEWARE
    server = ResourceServer(local_issuer.issuer_config())
    proxies = TrustedProxies(["127.0.0.1"], certificate_header="x-client-cert")
    token = local_issuer.mint(x5t_s256=CERT.x5t_s256, scope="orders.read")
    headers = {"authorization": f"Bearer {token}"}
    with configured(server, PROXIES=proxies):
        client = DjangoClient()  # REMOTE_ADDR 127.0.0.1
        response = client.get(
            "/orders", headers=headers | {"x-client-cert": CERT.pem.replace("\n", " ")}
        )
        assert response.status_code == 200
        response = client.get("/orders", headers=headers | {"x-client-cert": THIEF.escaped_pem()})
        assert response.status_code == 401
    server.close()
