"""Django: the `require()` decorator behind the WSGI middleware, through the error table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.test import RequestFactory
from django.urls import path

from bearerguard import ResourceServer
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

if not settings.configured:  # a minimal project: this module is its URLconf
    settings.configure(
        ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="tests", MIDDLEWARE=[]
    )
    django.setup()

from django.core.handlers.wsgi import WSGIHandler

from bearerguard.integrations.django import get_token, require

from .conftest import REALM, RESOURCE, ROWS, Row, check_row, wsgi_caller


@require("orders.read")
def orders(request: HttpRequest) -> JsonResponse:
    token = get_token(request)
    assert token is not None
    return JsonResponse({"client_id": token.client_id})


@require(any_of=["reports.read", "admin"])
async def reports(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"reports": []})


@require("orders.read", optional=True)
def maybe(request: HttpRequest) -> JsonResponse:
    token = get_token(request)
    return JsonResponse({"client_id": token.client_id if token else None})


urlpatterns = [path("orders", orders), path("reports", reports), path("maybe", maybe)]


def app(server: ResourceServer) -> Callable[..., Any]:
    # optional=True: requests without a token reach the views, whose decorator refuses them.
    return BearerAuthWSGIMiddleware(
        WSGIHandler(), server, realm=REALM, resource=RESOURCE, optional=True
    )


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_django_answers_the_error_table(
    local_issuer: LocalIssuer, server: ResourceServer, row: Row
) -> None:
    answer = check_row(row, local_issuer, wsgi_caller(app(server)))
    if row.name == "ok":
        assert answer.json() == {"client_id": "test-client"}


def test_django_optional_requirement(local_issuer: LocalIssuer, server: ResourceServer) -> None:
    call = wsgi_caller(app(server))
    assert call("/maybe", []).json() == {"client_id": None}
    token = local_issuer.mint(scope="orders.read")
    assert call("/maybe", [f"Bearer {token}"]).json() == {"client_id": "test-client"}
    assert call("/maybe", [f"Bearer {local_issuer.mint()}"]).status == 403


def test_django_without_the_middleware_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="BearerAuthWSGIMiddleware"):
        orders(RequestFactory().get("/orders"))
