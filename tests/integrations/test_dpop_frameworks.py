"""DPoP through the framework helpers (FastAPI's `BearerAuth`, Flask's `require`): they read
the request through the adapters' seam, so the proof, its binding and the DPoP challenges are
the middleware's."""

from typing import Annotated, Any

from fastapi import FastAPI, Security
from flask import Flask
from starlette.testclient import TestClient

from bearerguard import AccessToken, DPoPPolicy, ResourceServer
from bearerguard.integrations.fastapi import BearerAuth
from bearerguard.integrations.flask import BearerGuard, require
from bearerguard.testing import DPoPKey, LocalIssuer

from ..helpers import aclose_on

FLASK_URL = "http://localhost/orders"  # Werkzeug's test client's default host
ALGS = " ".join(DPoPPolicy().algorithms)


def fastapi_app(auth: BearerAuth) -> FastAPI:
    app = FastAPI()

    @app.get("/orders")
    async def orders(token: Annotated[AccessToken, Security(auth, scopes=["orders.read"])]) -> Any:
        return {"client": token.client_id}

    return app


def flask_app(server: ResourceServer) -> Flask:
    app = Flask(__name__)
    BearerGuard(app, server=server)

    @app.get("/orders")
    @require("orders.read")
    def orders() -> Any:
        return {"ok": True}

    return app


def requests(issuer: LocalIssuer, url: str) -> list[dict[str, str]]:
    key = DPoPKey("ES256")
    token = issuer.mint(dpop_jkt=key.jkt, scope="orders.read")
    dpop = {"authorization": f"DPoP {token}"}
    return [
        dpop | {"dpop": key.proof("GET", url, token)},  # the key holder
        dpop | {"dpop": DPoPKey("ES256").proof("GET", url, token)},  # a thief's proof
        dpop | {"dpop": key.proof("POST", url, token)},  # for another method
        {"authorization": f"Bearer {token}"},  # the downgrade
        {},
    ]


EXPECTED = [
    (200, None),
    (401, 'DPoP error="invalid_token"'),
    (401, 'DPoP error="invalid_dpop_proof"'),
    (401, 'Bearer error="invalid_token"'),
    (401, f'Bearer, DPoP algs="{ALGS}"'),
]


def test_fastapi_security_with_dpop(local_issuer: LocalIssuer) -> None:
    server = ResourceServer(local_issuer.issuer_config(), dpop="allowed")
    with TestClient(fastapi_app(BearerAuth(server))) as client:
        answers = [
            client.get("/orders", headers=h)
            for h in requests(local_issuer, "http://testserver/orders")
        ]
        aclose_on(client, server)
    got = [(a.status_code, a.headers.get("www-authenticate")) for a in answers]
    for (status, challenge), (want_status, want) in zip(got, EXPECTED, strict=True):
        assert status == want_status and (challenge or "").startswith(want or ""), challenge


def test_flask_require_with_dpop(local_issuer: LocalIssuer) -> None:
    with ResourceServer(local_issuer.issuer_config(), dpop="allowed") as server:
        client = flask_app(server).test_client()
        answers = [client.get("/orders", headers=h) for h in requests(local_issuer, FLASK_URL)]
    got = [(a.status_code, a.headers.get("www-authenticate")) for a in answers]
    for (status, challenge), (want_status, want) in zip(got, EXPECTED, strict=True):
        assert status == want_status and (challenge or "").startswith(want or ""), challenge


# DPoP off: the DPoP scheme is another scheme, and a DPoP-bound token sent as a bearer token is
# refused (RFC 9449 §7.2), in the one scheme the server speaks: never a 200.
EXPECTED_OFF = [
    (401, "Bearer"),
    (401, "Bearer"),
    (401, "Bearer"),
    (401, 'Bearer error="invalid_token", error_description="The access token is bound to a DPoP'),
    (401, "Bearer"),
]


def test_fastapi_and_flask_with_dpop_off_refuse_a_dpop_bound_token(
    local_issuer: LocalIssuer,
) -> None:
    server = ResourceServer(local_issuer.issuer_config())
    with TestClient(fastapi_app(BearerAuth(server))) as client:
        fastapi = [
            client.get("/orders", headers=h)
            for h in requests(local_issuer, "http://testserver/orders")
        ]
        unbound = client.get(
            "/orders", headers={"authorization": f"Bearer {local_issuer.mint(scope='orders.read')}"}
        )
        aclose_on(client, server)
    assert unbound.status_code == 200
    with ResourceServer(local_issuer.issuer_config()) as server:
        flask = [
            flask_app(server).test_client().get("/orders", headers=h)
            for h in requests(local_issuer, FLASK_URL)
        ]
    for answers in (fastapi, flask):
        got = [(a.status_code, a.headers.get("www-authenticate") or "") for a in answers]
        for (status, challenge), (want_status, want) in zip(got, EXPECTED_OFF, strict=True):
            assert status == want_status and challenge.startswith(want), challenge
            assert ", DPoP" not in challenge and "algs=" not in challenge  # no DPoP challenge
