"""Flask: the example app through the error table, app factories, several apps, the middleware."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask, request
from flask_app import create_app

from bearerguard import ConfigurationError, PolicyTable, ResourceServer, ScopeGrants
from bearerguard.integrations.flask import BearerGuard, current_token, get_token, require
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from .conftest import RESOURCE, ROWS, Answer, Call, Row, check_row, wsgi_caller


def flask_caller(app: Flask) -> Call:
    """Flask's test client; repeated header lines are joined as a WSGI server joins them."""
    client = app.test_client()

    def call(path: str, authorization: list[str]) -> Answer:
        headers = {"authorization": ", ".join(authorization)} if authorization else {}
        response = client.get(path, headers=headers)
        return Answer(
            response.status_code, {k.lower(): v for k, v in response.headers}, response.data
        )

    return call


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_flask_example_answers_the_error_table(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row
) -> None:
    check_row(row, local_issuer, flask_caller(create_app(server, resource=RESOURCE)))


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_flask_example_behind_the_wsgi_middleware_answers_the_same(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row
) -> None:
    app = create_app(server, resource=RESOURCE)
    wrapped = BearerAuthWSGIMiddleware(app.wsgi_app, server, realm="orders-api", resource=RESOURCE)
    check_row(row, local_issuer, wsgi_caller(wrapped))


def test_flask_metadata_gathers_declared_scopes(server: ResourceServer) -> None:
    client = create_app(server, resource=RESOURCE).test_client()
    document = client.get("/.well-known/oauth-protected-resource/v1").get_json()
    assert document["scopes_supported"] == ["admin", "orders.read", "reports.read"]


guard = BearerGuard()  # one extension object, several apps (app factory pattern)


def factory(issuer: LocalIssuer, realm: str) -> Flask:
    app = Flask(realm)
    app.config.update(
        BEARERGUARD_ISSUER=issuer.issuer,
        BEARERGUARD_AUDIENCE=issuer.audience,
        BEARERGUARD_REALM=realm,
    )
    guard.init_app(app)

    @app.get("/me")
    @require()
    def me() -> dict[str, Any]:
        return {"client": current_token.client_id, "realm": realm}

    @app.get("/maybe")
    @require("orders.read", optional=True)
    def maybe() -> dict[str, Any]:
        token = get_token()
        return {"client": token and token.client_id}

    return app


def test_flask_several_apps_from_one_extension_read_their_own_config(
    local_issuer_factory: Callable[..., LocalIssuer],
) -> None:
    first, second = local_issuer_factory(), local_issuer_factory()
    app_a, app_b = factory(first, "a"), factory(second, "b")
    assert isinstance(app_a.extensions["bearerguard"].server, ResourceServer)
    token_a = {"authorization": "Bearer " + first.mint()}
    assert app_a.test_client().get("/me", headers=token_a).get_json() == {
        "client": "test-client",
        "realm": "a",
    }
    refused = app_b.test_client().get("/me", headers=token_a)  # the other app trusts another issuer
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith('Bearer realm="b", error="invalid_token"')


def test_flask_optional_view(local_issuer: LocalIssuer) -> None:
    client = factory(local_issuer, "c").test_client()
    assert client.get("/maybe").get_json() == {"client": None}
    bad = client.get("/maybe", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401
    lacking = client.get("/maybe", headers={"authorization": "Bearer " + local_issuer.mint()})
    assert lacking.status_code == 403


def test_flask_current_token_outside_a_protected_view_is_a_clear_error(
    server: ResourceServer,
) -> None:
    app = Flask("x")
    BearerGuard(app, server=server)
    with app.test_request_context(), pytest.raises(RuntimeError, match="require"):
        _ = current_token.client_id


def test_flask_config_values_need_not_be_strings() -> None:
    # A bytes secret, a list of audiences and a number mean what they say, not their repr.
    secret = b"orders-api-shared-secret-0123456789"
    app = Flask("typed")
    app.config.update(
        BEARERGUARD_ISSUER="https://auth.example.test/tenant",
        BEARERGUARD_AUDIENCE=["api://orders", "api://billing"],
        BEARERGUARD_ALGORITHMS=("HS256",),
        BEARERGUARD_SHARED_SECRET=secret,
        BEARERGUARD_LEEWAY=5,
    )
    BearerGuard(app)

    @app.get("/me")
    @require()
    def me() -> dict[str, Any]:
        return {"client": current_token.client_id}

    claims = {
        "iss": "https://auth.example.test/tenant",
        "aud": "api://billing",
        "exp": time.time() + 60,
        "client_id": "c1",
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    response = app.test_client().get("/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"client": "c1"}

    broken = Flask("broken")
    broken.config.update(
        BEARERGUARD_ISSUER="https://auth.example.test/tenant",
        BEARERGUARD_AUDIENCE="api://orders",
        BEARERGUARD_SHARED_SECRET=b"\xff" * 32,
    )
    with pytest.raises(ConfigurationError, match="BEARERGUARD_SHARED_SECRET"):
        BearerGuard(broken)


def test_flask_get_token_without_require_returns_the_middlewares_token(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    app = Flask("plain")
    BearerGuard(app, server=server)

    @app.get("/who")
    def who() -> dict[str, Any]:  # no @require: the middleware judged the request
        token = get_token()
        return {"client": token and token.client_id, "current": current_token.client_id}

    @app.get("/who-async")
    async def who_async() -> dict[str, Any]:  # an async view: the same token
        token = get_token()
        return {"client": token and token.client_id, "current": current_token.client_id}

    app.wsgi_app = BearerAuthWSGIMiddleware(app.wsgi_app, server)  # type: ignore[method-assign]
    client = app.test_client()
    token = local_issuer.mint(subject="svc-a")
    for path in ("/who", "/who-async"):
        answer = client.get(path, headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert answer.get_json() == {"client": "svc-a", "current": "svc-a"}
    assert client.get("/who").status_code == 401  # the middleware still refuses


def _policy_app(server: ResourceServer) -> Flask:
    app = Flask("policy")
    table = PolicyTable(
        [
            ScopeGrants({"orders.read": [("GET", r"/orders(/\d+)?")]}),
            ScopeGrants({"orders.write": [("POST", r"/orders")]}),
        ],
        protect="/orders",
    )
    BearerGuard(app, server=server, policy=table, public_paths=["/health"], resource=RESOURCE)

    @app.route("/orders", methods=["GET", "POST"])
    def orders() -> dict[str, Any]:  # no decorator: the table decides
        return {"client": current_token.client_id, "method": request.method}

    @app.get("/orders/<int:number>")
    def order(number: int) -> dict[str, Any]:
        return {"number": number}

    @app.get("/reports")
    @require("reports.read")
    def reports() -> dict[str, Any]:
        return {"client": current_token.client_id}

    @app.get("/health")
    def health() -> str:
        return "ok"

    return app


def test_flask_bearerguard_policy_enforces_the_table_without_a_second_wrapper(
    local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    client = _policy_app(server).test_client()

    def call(method: str, path: str, *scopes: str) -> Any:
        token = local_issuer.mint(scope=list(scopes), subject="svc")
        return client.open(path, method=method, headers={"authorization": f"Bearer {token}"})

    assert call("GET", "/orders", "orders.read").get_json() == {"client": "svc", "method": "GET"}
    assert call("GET", "/orders/7", "orders.read").get_json() == {"number": 7}
    assert call("POST", "/orders", "orders.write").status_code == 200
    refused = call("POST", "/orders", "orders.read")
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert 'scope="orders.write"' in refused.headers["www-authenticate"]
    assert call("GET", "/orders", "orders.write").status_code == 403
    assert client.get("/orders").status_code == 401
    assert call("GET", "/orders/../reports", "orders.read").status_code == 400
    # Outside the table's prefix a valid token is enough for the middleware; require() still
    # checks its own scopes, rendered by the same guard.
    assert call("GET", "/reports", "orders.read").status_code == 403
    assert call("GET", "/reports", "reports.read").get_json() == {"client": "svc"}
    assert client.get("/health").data == b"ok"
    document = client.get("/.well-known/oauth-protected-resource/v1").get_json()
    assert document["scopes_supported"] == ["orders.read", "orders.write", "reports.read"]


def _typo_app(name: str) -> Flask:
    app = Flask(name)
    app.config.update(
        BEARERGUARD_ISSUER="https://auth.example.test/tenant",
        BEARERGUARD_AUDIENCE="api://orders",
        BEARERGUARD_REALM="orders",  # read by the extension itself: never reported
        BEARERGUARD_RESOURCE=RESOURCE,
        BEARERGUARD_LEEWAY_SECONDS=5,  # a typo of BEARERGUARD_LEEWAY
    )
    return app


def test_flask_unknown_config_key_is_reported_with_the_closest_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bearerguard"):
        BearerGuard(_typo_app("typo"))
    reports = [r.getMessage() for r in caplog.records if "unknown" in r.getMessage()]
    assert reports == [
        "unknown app.config key BEARERGUARD_LEEWAY_SECONDS "
        "(did you mean BEARERGUARD_LEEWAY?): it is not read"
    ]
    with pytest.raises(ConfigurationError, match="BEARERGUARD_LEEWAY_SECONDS"):
        BearerGuard(_typo_app("strict"), strict=True)


def test_flask_reads_the_guard_settings_quart_and_django_read(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    # One reader for Flask, Quart and Django: BEARERGUARD_PUBLIC_PATHS is a setting here too
    # (it was reported as an unknown key and ignored), and puts the middleware in front.
    app = Flask("public")
    app.config.update(
        BEARERGUARD_ISSUER=local_issuer.issuer,
        BEARERGUARD_AUDIENCE=local_issuer.audience,
        BEARERGUARD_PUBLIC_PATHS=["/health"],
    )

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/orders")
    def orders() -> dict[str, bool]:
        return {"ok": True}

    with caplog.at_level(logging.WARNING, logger="bearerguard"):
        BearerGuard(app)
    assert not [r for r in caplog.records if "unknown" in r.getMessage()]
    assert isinstance(app.wsgi_app, BearerAuthWSGIMiddleware)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/orders").status_code == 401  # every other path needs a token
