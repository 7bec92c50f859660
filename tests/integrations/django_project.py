"""A minimal Django project for the Django and DRF tests: settings, views, and its URLconf.

Django's settings are configured once per process: every Django test imports this module first
and changes what it needs with `override_settings`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="tests",
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        # No django.contrib.auth: DRF's anonymous user is None, its default would need the app.
        REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
    )
    django.setup()

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bearerguard import AccessToken, Requirement
from bearerguard.integrations.django import get_token, require
from bearerguard.integrations.drf import BearerAuthentication, HasScopes

MIDDLEWARE = "bearerguard.integrations.django.BearerAuthMiddleware"


def _client(request: HttpRequest) -> JsonResponse:
    token = get_token(request)
    assert request.auth is token
    return JsonResponse({"client_id": token.client_id if token else None})


@require("orders.read")
def orders(request: HttpRequest) -> JsonResponse:
    return _client(request)


@require(any_of=["reports.read", "admin"])
async def reports(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"reports": []})


@require("orders.read", optional=True)
def maybe(request: HttpRequest) -> JsonResponse:
    return _client(request)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


ADMIN = Requirement.of("admin")


def checked(request: HttpRequest) -> JsonResponse:
    ADMIN.check(get_token(request))  # a refusal raised in the view itself
    return JsonResponse({"admin": True})


async def achecked(request: HttpRequest) -> JsonResponse:
    ADMIN.check(get_token(request))
    return JsonResponse({"admin": True})


@require("orders.read")
class ClassOrders(View):  # type: ignore[misc]
    def get(self, request: HttpRequest) -> JsonResponse:
        return _client(request)


class ClassReports(View):  # type: ignore[misc]
    @require(any_of=["reports.read", "admin"])  # on a method, with or without method_decorator
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"reports": []})


@require("orders.read")
class AsyncClassOrders(View):  # type: ignore[misc]
    async def get(self, request: HttpRequest) -> JsonResponse:
        return _client(request)


class AsyncClassReports(View):  # type: ignore[misc]
    @method_decorator(require(any_of=["reports.read", "admin"]))  # type: ignore[untyped-decorator]
    async def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"reports": []})


class DRFView(APIView):  # type: ignore[misc]
    authentication_classes: ClassVar[list[type]] = [BearerAuthentication]
    permission_classes: ClassVar[list[type]] = [HasScopes]


class DRFOrders(DRFView):
    required_scopes: ClassVar[object] = ["orders.read"]

    def get(self, request: Request) -> Response:
        token = request.auth
        assert isinstance(token, AccessToken)
        assert request.user.is_authenticated and request.user.token is token
        return Response({"client_id": token.client_id})


class DRFReports(DRFView):
    required_scopes: ClassVar[object] = {"GET": Requirement.of(any_of=["reports.read", "admin"])}

    def get(self, request: Request) -> Response:
        return Response({"reports": []})

    def post(self, request: Request) -> Response:  # not in required_scopes: refused
        return Response({"posted": True})


class DRFPerMethod(DRFView):
    required_scopes: ClassVar[object] = {"GET": ["orders.read"], "POST": ["orders.write"]}

    def get(self, request: Request) -> Response:
        return Response({"method": "GET"})

    def post(self, request: Request) -> Response:
        return Response({"method": "POST"})


def _views(prefix: str, orders: Any, reports: Any) -> list[Any]:
    return [path(f"{prefix}orders", orders), path(f"{prefix}reports", reports)]


urlpatterns = [
    *_views("", orders, reports),
    *_views("class/", ClassOrders.as_view(), ClassReports.as_view()),
    *_views("aclass/", AsyncClassOrders.as_view(), AsyncClassReports.as_view()),
    *_views("drf/", DRFOrders.as_view(), DRFReports.as_view()),
    path("drf/methods", DRFPerMethod.as_view()),
    path("maybe", maybe),
    path("health", health),
    path("checked", checked),
    path("achecked", achecked),
]
