"""A Django API (with a Django REST framework view) protected by bearerguard, served by uvicorn
through Django's ASGI handler. Run: `python examples/django_app.py`.

In a project the settings below live in settings.py and the views in views.py and urls.py;
here the views are imported once the settings are configured, as Django does it.
"""

# ruff: noqa: PLC0415

from __future__ import annotations

from typing import Any, ClassVar

import django
import uvicorn
from django.conf import settings


def configure(server: Any, *, resource: str | None = None) -> None:
    """The project's settings: the middleware, and the server it uses."""
    settings.configure(
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1"],
        SECRET_KEY="example",
        MIDDLEWARE=["bearerguard.integrations.django.BearerAuthMiddleware"],
        BEARERGUARD={
            "SERVER": server,  # or ISSUER, AUDIENCE, ... (the keys from_env reads)
            "REALM": "orders-api",
            "RESOURCE": resource,
            "PUBLIC_PATHS": ["/health"],
        },
        REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},  # no django.contrib.auth needed
    )
    django.setup()


def urls() -> list[Any]:
    from django.http import HttpRequest, JsonResponse
    from django.urls import path
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from bearerguard.integrations.django import require
    from bearerguard.integrations.drf import BearerAuthentication, HasScopes

    def health(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"ok": True})

    @require("orders.read")
    async def orders(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"client_id": request.auth.client_id, "orders": [1, 2]})

    @require(any_of=["reports.read", "admin"])
    def reports(request: HttpRequest) -> JsonResponse:  # sync views work too
        return JsonResponse({"reports": []})

    class Invoices(APIView):  # type: ignore[misc]
        authentication_classes: ClassVar[list[type]] = [BearerAuthentication]
        permission_classes: ClassVar[list[type]] = [HasScopes]
        required_scopes: ClassVar[dict[str, list[str]]] = {"GET": ["invoices.read"]}

        def get(self, request: Request) -> Response:
            return Response({"client_id": request.auth.client_id, "invoices": []})

    return [
        path("health", health),
        path("orders", orders),
        path("reports", reports),
        path("invoices", Invoices.as_view()),
    ]


urlpatterns: list[Any] = []


if __name__ == "__main__":
    from _local import local_setup

    with local_setup() as (server, base):
        port = int(base.rsplit(":", 1)[1])
        configure(server, resource=base)
        urlpatterns.extend(urls())
        from django.core.asgi import get_asgi_application

        uvicorn.run(get_asgi_application(), host="127.0.0.1", port=port, log_level="warning")
