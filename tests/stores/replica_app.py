"""One replica of a fleet, for `test_fleet.py`: run by uvicorn in a process of its own.

The server comes from the environment (`BEARERGUARD_REDIS_URL`/`_SECRET`, and the introspection
client's `BEARERGUARD_INTROSPECTION_*`), with a role lookup over HTTP at `REPLICA_ROLES_URL`.
"""

from __future__ import annotations

import dataclasses
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bearerguard import HTTPRoleLookup, ResourceServer, RoleResolver
from bearerguard._env import introspection_from_env
from bearerguard.asgi import BearerAuthMiddleware

base = introspection_from_env(os.environ)
assert base is not None
roles = RoleResolver(HTTPRoleLookup(os.environ["REPLICA_ROLES_URL"] + "/{id}", allow_http=True))
server = ResourceServer.from_env(strict=True, introspection=dataclasses.replace(base, roles=roles))


async def who(request: Request) -> JSONResponse:
    token = request.scope["bearerguard.token"]
    return JSONResponse({"client": token.client_id, "scopes": sorted(token.scopes)})


app = Starlette(routes=[Route("/", who)])
app.add_middleware(BearerAuthMiddleware, server=server)
