"""Django REST framework: `BearerAuthentication` and `HasScopes` with the real DRF, through the
error table (RFC 6750 status and challenge, DRF's body), alone or behind the Django middleware.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import AsyncClient, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bearerguard import ResourceServer
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from . import django_project
from .conftest import REALM, RESOURCE, ROWS, Answer, Call, Row, check_row, wsgi_caller

_NOT_AUTHENTICATED = "Authentication credentials were not provided."


@contextmanager
def drf_caller(server: ResourceServer, *, middleware: bool) -> Iterator[Call]:
    values = {"SERVER": server, "REALM": REALM, "RESOURCE": RESOURCE, "OPTIONAL": True}
    stack = [django_project.MIDDLEWARE] if middleware else []
    with override_settings(MIDDLEWARE=stack, BEARERGUARD=values):
        call = wsgi_caller(WSGIHandler())
        yield lambda path, authorization: call("/drf" + path, authorization)


def check_drf_row(row: Row, issuer: LocalIssuer, call: Call) -> Answer:
    """The row's status and exact challenge; DRF's body, with the refusal's fixed text."""
    authorization = row.authorization(issuer)
    if row.down:
        issuer.go_down("refuse")
    answer = call(row.path, authorization)
    assert answer.status == row.status, answer
    assert answer.headers.get("www-authenticate") == row.challenge
    if row.status == 200:
        return answer
    assert answer.headers["content-type"] == "application/json"
    if row.down:
        assert answer.headers["retry-after"] == "10"
        detail = "The authorization server could not be reached."
    else:
        detail = row.body["error_description"] if row.body else _NOT_AUTHENTICATED
    assert answer.json() == {"detail": detail}
    return answer


@pytest.mark.parametrize("middleware", [False, True], ids=["alone", "behind-middleware"])
@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_drf_answers_the_error_table(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row, middleware: bool
) -> None:
    # Behind the middleware, a bad token never reaches DRF: the middleware's answer is the
    # table's own; a request without a token (OPTIONAL) is DRF's to refuse.
    answered_by_middleware = row.down or (row.body is not None and row.status != 403)
    check = check_row if middleware and answered_by_middleware else check_drf_row
    with drf_caller(server, middleware=middleware) as call:
        answer = check(row, local_issuer, call)
    if row.name == "ok":
        assert answer.json() == {"client_id": "test-client"}


def test_drf_required_scopes_per_method(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    reader = [f"Bearer {local_issuer.mint(scope='orders.read')}"]
    writer = [f"Bearer {local_issuer.mint(scope='orders.write')}"]
    with drf_caller(server, middleware=False) as get:
        assert get("/methods", reader).json() == {"method": "GET"}
        refused = get("/methods", writer)
        assert refused.status == 403
        assert 'scope="orders.read"' in refused.headers["www-authenticate"]
    with override_settings(BEARERGUARD={"SERVER": server}):
        client = django_project.DRFPerMethod.as_view()
        from django.test import RequestFactory

        factory = RequestFactory()
        post = client(factory.post("/drf/methods", HTTP_AUTHORIZATION=writer[0]))
        assert (post.status_code, post.data) == (200, {"method": "POST"})
        post = client(factory.post("/drf/methods", HTTP_AUTHORIZATION=reader[0]))
        assert post.status_code == 403
        assert 'scope="orders.write"' in post["www-authenticate"]
        # HEAD falls back to GET's scopes; a method the view does not list is refused.
        head = client(factory.head("/drf/methods", HTTP_AUTHORIZATION=reader[0]))
        assert head.status_code == 200
        admin = [f"Bearer {local_issuer.mint(scope='admin reports.read orders.write')}"]
        unlisted = django_project.DRFReports.as_view()(
            factory.post("/drf/reports", HTTP_AUTHORIZATION=admin[0])
        )
        assert unlisted.status_code == 403
        assert unlisted["www-authenticate"] == (
            'Bearer error="insufficient_scope", '
            'error_description="The access token lacks a required scope."'
        )


def test_drf_under_asgi(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    headers = {"Authorization": f"Bearer {local_issuer.mint(scope='orders.read')}"}

    async def run() -> list[int]:
        client = AsyncClient()
        answers = [await client.get(p, headers=headers) for p in ("/drf/orders", "/drf/reports")]
        await server.aclose()
        return [answer.status_code for answer in answers]

    for stack in ([], [django_project.MIDDLEWARE]):
        values = {"SERVER": server, "REALM": REALM}
        with override_settings(MIDDLEWARE=stack, BEARERGUARD=values):
            assert asyncio.run(run()) == [200, 403]


def test_drf_refusals_are_logged_without_the_token(
    local_issuer: LocalIssuer, server: ResourceServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = local_issuer.mint(scope="orders.write")
    with drf_caller(server, middleware=False) as call, caplog.at_level(logging.WARNING):
        assert call("/orders", [f"Bearer {token}"]).status == 403
    messages = [r.getMessage() for r in caplog.records if r.name == "bearerguard"]
    assert messages == [
        f"refused: SCOPE iss='{local_issuer.issuer}' client_id='test-client' required='orders.read'"
    ]
    assert not any(token in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("declared", ["orders.read", None])
def test_drf_bad_or_missing_required_scopes_is_improperly_configured(
    declared: object, local_issuer: LocalIssuer, server: ResourceServer
) -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import RequestFactory

    class Bad(django_project.DRFOrders):
        required_scopes = declared

    request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {local_issuer.mint()}")
    with (
        override_settings(BEARERGUARD={"SERVER": server}),
        pytest.raises(ImproperlyConfigured, match="required_scopes must be a list"),
    ):
        Bad.as_view()(request)


_LATIN1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_drf_answers_any_header_as_the_wsgi_middleware(
    local_issuer: LocalIssuer, server: ResourceServer, data: st.DataObject
) -> None:
    # Alone, BearerAuthentication reads the credentials itself. The oracle: the plain WSGI
    # middleware. What it refuses DRF refuses with the same status and challenge (no token, or
    # another scheme: DRF's "not authenticated", the same 401); what it admits reaches the view.
    good = "Bearer " + local_issuer.mint(scope="orders.read")
    line = st.one_of(st.just(good), _LATIN1, _LATIN1.map("Bearer ".__add__), st.just(good + "x"))
    lines = data.draw(st.lists(line, max_size=2), label="lines")
    query = data.draw(st.sampled_from(["", "access_token=x", "a=b&access_token"]), label="q")
    path = "/orders" + ("?" + query if query else "")
    plain = BearerAuthWSGIMiddleware(_ok, server, realm=REALM, resource=RESOURCE)
    expected = wsgi_caller(plain)(path, lines)
    with drf_caller(server, middleware=False) as call:
        answer = call(path, lines)
    if expected.status == 200:
        assert (answer.status, answer.json()) == (200, {"client_id": "test-client"})
        return
    assert answer.status == expected.status
    assert answer.headers.get("www-authenticate") == expected.headers.get("www-authenticate")
    if expected.body:
        assert answer.json() == {"detail": json.loads(expected.body)["error_description"]}


def _ok(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "application/json")])
    return [b"{}"]
