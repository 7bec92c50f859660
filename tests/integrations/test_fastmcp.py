"""FastMCP's streamable-HTTP app behind BearerGuardAuth: what only FastMCP does.

The contract both MCP integrations keep is in test_mcp_contract.py, which serves this app.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastmcp import FastMCP
from fastmcp.server.auth import AccessToken as FastMCPAccessToken

from bearerguard import ConfigurationError, Introspection
from bearerguard.integrations.fastmcp import BearerGuardAuth
from bearerguard.testing import LocalIssuer

from .mcp_support import SCOPE, Running, challenge, free_port, initialize, serve
from .test_mcp import import_without


def build_server(auth: BearerGuardAuth) -> FastMCP:
    server = FastMCP("calculator", auth=auth)

    @server.tool
    def add(a: int, b: int) -> int:
        return a + b

    return server


@contextmanager
def running(
    issuer: LocalIssuer, *, introspection: Introspection | None = None
) -> Iterator[Running]:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    auth = BearerGuardAuth.for_resource(
        issuer.issuer, resource, required_scopes=[SCOPE], introspection=introspection
    )
    app = build_server(auth).http_app(path="/mcp")
    with serve(app, port) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield Running(client, resource, issuer)
    auth.verifier.server.close()


@pytest.fixture
def mcp(local_issuer: LocalIssuer) -> Iterator[Running]:
    with running(local_issuer) as app:
        yield app


def test_no_token_is_a_challenge_without_an_error_code(mcp: Running) -> None:
    response = initialize(mcp.client, None)
    assert response.status_code == 401
    assert "error" not in challenge(response)  # RFC 6750 §3.1; the bare SDK adds one here


def test_a_resource_url_the_app_does_not_serve_is_refused_at_build(
    local_issuer: LocalIssuer,
) -> None:
    auth = BearerGuardAuth.for_resource(local_issuer.issuer, "https://mcp.example.test/mcp")
    with pytest.raises(ConfigurationError, match=re.escape("https://mcp.example.test/tools")):
        build_server(auth).http_app(path="/tools")
    auth.verifier.server.close()


def test_the_fastmcp_token_carries_our_claims(local_issuer: LocalIssuer) -> None:
    resource = "https://mcp.example.test/mcp"
    auth = BearerGuardAuth.for_resource(local_issuer.issuer, resource)
    token = local_issuer.mint(audience=resource, scope="b a", subject="svc-1")
    access = asyncio.run(auth.verify_token(token))
    assert isinstance(access, FastMCPAccessToken)
    assert (access.client_id, access.scopes, access.resource) == ("svc-1", ["a", "b"], resource)
    assert access.claims["iss"] == local_issuer.issuer
    auth.verifier.server.close()


def test_importing_without_fastmcp_names_the_extra() -> None:
    result = import_without("fastmcp", "bearerguard.integrations.fastmcp")
    assert result.returncode == 1
    message = 'bearerguard.integrations.fastmcp needs FastMCP: pip install "bearerguard[fastmcp]"'
    assert f"ImportError: {message}" in result.stderr
