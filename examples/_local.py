"""Shared start-up for the examples: a local issuer, a resource server and a free port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from bearerguard import Issuer, ResourceServer
from bearerguard.testing import LocalIssuer

REALM = "orders-api"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_setup() -> Iterator[tuple[ResourceServer, str]]:
    """Start a LocalIssuer, print curl lines for the API, and yield (server, API base URL)."""
    with LocalIssuer(token_lifetime=3600) as issuer:
        server = ResourceServer(Issuer(issuer=issuer.issuer, audience=issuer.audience))
        base = f"http://127.0.0.1:{free_port()}"
        reader = issuer.mint(scope="orders.read")
        print(f"local issuer: {issuer.issuer}\nAPI: {base}\n")
        print(f"curl -i {base}/orders -H 'Authorization: Bearer {reader}'")
        print(f"curl -i {base}/reports -H 'Authorization: Bearer {reader}'   # 403")
        print(f"curl -i {base}/orders                                          # 401")
        print(f"curl -i {base}/.well-known/oauth-protected-resource", flush=True)
        try:
            yield server, base
        finally:
            server.close()
