"""The apps served by uvicorn for the over-HTTP group: `uvicorn --factory http_app:bare`,
`http_app:protected` (configured from `BEARERGUARD_*` variables, keys fetched at start-up) and
`http_app:minimal`, the reference guard (the issuer's public key given as `BENCH_MINIMAL_KEY`, PEM,
and `BENCH_MINIMAL_KID`)."""

from __future__ import annotations

import os

from apps import MinimalGuard, starlette_app
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from reference import Verifier
from starlette.applications import Starlette

from bearerguard import ResourceServer
from bearerguard.asgi import BearerAuthMiddleware


def bare() -> Starlette:
    return starlette_app(guarded=False)


def protected() -> BearerAuthMiddleware:
    server = ResourceServer.from_env()
    for status in server.warm():
        if not status.fresh:
            raise RuntimeError(f"could not fetch the keys of {status.issuer}: {status.last_error}")
    return BearerAuthMiddleware(starlette_app(guarded=True), server=server)


def minimal() -> MinimalGuard:
    """The minimal guard of apps.py on the minimal verifier keeping its results (reference.py)."""
    verifier = Verifier(
        alg=os.environ["BEARERGUARD_ALGORITHMS"],
        key=load_pem_public_key(os.environ["BENCH_MINIMAL_KEY"].encode()),
        kid=os.environ["BENCH_MINIMAL_KID"],
        issuer=os.environ["BEARERGUARD_ISSUER"],
        audience=os.environ["BEARERGUARD_AUDIENCE"],
    )
    return MinimalGuard(starlette_app(guarded=False), verifier)
