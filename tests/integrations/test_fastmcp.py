"""FastMCP's streamable-HTTP app behind BearerGuardAuth, called over real HTTP."""

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

from .mcp_support import (
    SCOPE,
    Running,
    call_tool,
    challenge,
    check_metadata,
    free_port,
    initialize,
    introspection_at,
    refusal,
    serve,
)
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


def test_a_valid_token_calls_a_tool(mcp: Running) -> None:
    token = mcp.issuer.mint(audience=mcp.resource, scope=f"{SCOPE} other")
    result = call_tool(mcp.client, token, "add", {"a": 2, "b": 3})
    assert result["isError"] is False
    assert result["structuredContent"] == {"result": 5}


def test_no_token_is_401_pointing_at_the_resource_metadata(mcp: Running) -> None:
    response = initialize(mcp.client, None)
    assert response.status_code == 401
    params = challenge(response)
    metadata_url = mcp.resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert params["resource_metadata"] == metadata_url
    assert "error" not in params  # FastMCP follows RFC 6750 §3.1 here; the bare SDK does not


@pytest.mark.parametrize(
    "audience",
    ["https://other.example/mcp", ["https://other.example/mcp", "api://x"], None],
    ids=["other", "list-without-us", "absent"],
)
def test_a_token_for_another_resource_is_401(
    mcp: Running, audience: str | list[str] | None
) -> None:
    token = mcp.issuer.mint(audience=audience, scope=SCOPE)
    assert refusal(mcp, token) == (401, "invalid_token")


def test_a_missing_scope_is_403(mcp: Running) -> None:
    token = mcp.issuer.mint(audience=mcp.resource, scope="other")
    assert refusal(mcp, token) == (403, "insufficient_scope")


def test_the_protected_resource_metadata_is_served(mcp: Running) -> None:
    check_metadata(mcp)


def test_an_opaque_token_is_introspected(local_issuer: LocalIssuer) -> None:
    with running(local_issuer, introspection=introspection_at(local_issuer)) as mcp:
        token = local_issuer.mint_opaque(scope=SCOPE, aud=mcp.resource)
        assert call_tool(mcp.client, token, "add", {"a": 4, "b": 5})["structuredContent"] == {
            "result": 9
        }
        unbound = local_issuer.mint_opaque(scope=SCOPE)
        assert initialize(mcp.client, unbound).status_code == 401


def test_an_unreachable_issuer_is_503_not_401(local_issuer: LocalIssuer) -> None:
    with running(local_issuer) as mcp:
        local_issuer.go_down("refuse")
        response = initialize(mcp.client, local_issuer.mint(audience=mcp.resource, scope=SCOPE))
        assert response.status_code == 503
        assert response.json()["error"] == "temporarily_unavailable"


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
