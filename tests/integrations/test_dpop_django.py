"""DPoP through Django and DRF: the middleware (WSGI and ASGI), `require()` alone and DRF's
`BearerAuthentication` read the request's method, URL and `DPoP` header as every other adapter
does, and render the DPoP challenges (RFC 9449 §7.1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import Client, override_settings
from starlette.testclient import TestClient

from bearerguard import DPoPPolicy, ResourceServer
from bearerguard.testing import DPoPKey, LocalIssuer

from ..helpers import aclose_on
from . import django_project
from .test_django import asgi_app

ALGS = " ".join(DPoPPolicy().algorithms)
Get = Any  # (path, headers) -> (status, www-authenticate)


@contextmanager
def stack(kind: str, server: ResourceServer) -> Iterator[Get]:
    """GET through the Django middleware under WSGI or ASGI (`require()` on the views), or
    DRF's authentication alone."""
    middleware = [django_project.MIDDLEWARE] if kind in ("wsgi", "asgi") else []
    values = {"SERVER": server, "OPTIONAL": kind == "drf"}
    with override_settings(MIDDLEWARE=middleware, BEARERGUARD=values):
        if kind == "asgi":
            with TestClient(asgi_app(ASGIHandler(), server)) as client:
                yield lambda path, headers: _answer(client.get(path, headers=headers))
                aclose_on(client, server)
        else:
            client = Client()
            yield lambda path, headers: _answer(client.get(path, headers=headers))


def _answer(response: Any) -> tuple[int, str | None]:
    return response.status_code, response.headers.get("www-authenticate")


@pytest.mark.parametrize(
    ("kind", "path"),
    [("wsgi", "/orders"), ("asgi", "/reports"), ("drf", "/drf/orders")],
)
def test_django_and_drf_verify_dpop_requests(
    local_issuer: LocalIssuer, kind: str, path: str
) -> None:
    key, thief = DPoPKey("ES256"), DPoPKey("ES256")
    scope = "reports.read" if path == "/reports" else "orders.read"
    token = local_issuer.mint(dpop_jkt=key.jkt, scope=scope)
    url = "http://testserver" + path

    def dpop(signer: DPoPKey) -> dict[str, str]:
        return {"authorization": f"DPoP {token}", "dpop": signer.proof("GET", url, token)}

    server = ResourceServer(local_issuer.issuer_config(), dpop="allowed")
    with stack(kind, server) as get:
        assert get(path, dpop(key))[0] == 200  # a miss
        assert get(path, dpop(key))[0] == 200  # a hit, with a fresh proof
        status, challenge = get(path, dpop(thief))  # the thief's own valid proof
        assert status == 401 and challenge is not None
        assert challenge.startswith("DPoP ") and 'error="invalid_token"' in challenge
        assert f'algs="{ALGS}"' in challenge
        status, challenge = get(path, {"authorization": f"DPoP {token}"})  # no proof
        assert status == 401 and challenge is not None
        assert 'DPoP error="invalid_dpop_proof"' in challenge
        status, challenge = get(path, {"authorization": f"Bearer {token}"})  # a downgrade
        assert status == 401 and challenge is not None and challenge.startswith("Bearer ")
        status, challenge = get(path, {})  # both schemes accepted: both challenged
        assert status == 401 and challenge is not None
        assert challenge.startswith("Bearer") and f'DPoP algs="{ALGS}"' in challenge
        narrow = local_issuer.mint(dpop_jkt=key.jkt, scope="other")
        proof = key.proof("GET", url, narrow)
        status, challenge = get(path, {"authorization": f"DPoP {narrow}", "dpop": proof})
        assert status == 403 and challenge is not None  # answered in the request's scheme
        assert challenge.startswith('DPoP error="insufficient_scope"'), challenge
    server.close()
