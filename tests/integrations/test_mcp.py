"""The MCP Python SDK's streamable-HTTP app behind BearerGuardVerifier, called over real HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mcp.server import MCPServer
from mcp.server.auth.provider import AccessToken as SDKAccessToken

import bearerguard
from bearerguard import ConfigurationError, Introspection, Issuer, ResourceServer
from bearerguard.integrations.mcp import BearerGuardVerifier, UpstreamUnavailableMiddleware
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


def build_app(verifier: BearerGuardVerifier) -> MCPServer:
    server = MCPServer(
        "calculator",
        token_verifier=verifier,
        auth=verifier.auth_settings(required_scopes=[SCOPE]),
        log_level="WARNING",
    )

    @server.tool()
    def add(a: int, b: int) -> int:
        return a + b

    return server


@contextmanager
def running(
    issuer: LocalIssuer, *, answer_503: bool = True, introspection: Introspection | None = None
) -> Iterator[Running]:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    verifier = BearerGuardVerifier.for_resource(
        issuer.issuer, resource, introspection=introspection
    )
    app = build_app(verifier).streamable_http_app()
    if answer_503:
        app.add_middleware(UpstreamUnavailableMiddleware)
    with serve(app, port) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield Running(client, resource, issuer)
    verifier.server.close()


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
    metadata_url = mcp.resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    assert challenge(response)["resource_metadata"] == metadata_url


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


def test_a_token_listing_us_among_audiences_is_accepted(mcp: Running) -> None:
    token = mcp.issuer.mint(audience=["api://x", mcp.resource], scope=SCOPE)
    assert call_tool(mcp.client, token, "add", {"a": 1, "b": 1})["structuredContent"] == {
        "result": 2
    }


@pytest.mark.parametrize("token_kind", ["bad-signature", "expired", "garbage"])
def test_an_invalid_token_is_401(mcp: Running, token_kind: str) -> None:
    token = {
        "bad-signature": mcp.issuer.mint(audience=mcp.resource, scope=SCOPE)[:-4] + "AAAA",
        "expired": mcp.issuer.mint(audience=mcp.resource, scope=SCOPE, expires_in=-3600),
        "garbage": "not-a-token",
    }[token_kind]
    assert refusal(mcp, token) == (401, "invalid_token")


def test_a_missing_scope_is_403(mcp: Running) -> None:
    token = mcp.issuer.mint(audience=mcp.resource, scope="other")
    assert refusal(mcp, token) == (403, "insufficient_scope")


def test_the_protected_resource_metadata_is_served(mcp: Running) -> None:
    check_metadata(mcp)


def test_an_opaque_token_is_introspected(local_issuer: LocalIssuer) -> None:
    with running(local_issuer, introspection=introspection_at(local_issuer)) as mcp:
        token = local_issuer.mint_opaque(scope=SCOPE, aud=mcp.resource)
        result = call_tool(mcp.client, token, "add", {"a": 4, "b": 5})
        assert result["structuredContent"] == {"result": 9}
        assert local_issuer.count("/introspect") == 1  # then cached
        # MCP binds tokens to the server: an answer without our `aud` is not enough.
        unbound = local_issuer.mint_opaque(scope=SCOPE)
        assert initialize(mcp.client, unbound).status_code == 401
        other = local_issuer.mint_opaque(scope=SCOPE, aud="https://other.example/mcp")
        assert initialize(mcp.client, other).status_code == 401


def test_an_unreachable_issuer_is_503_not_401(local_issuer: LocalIssuer) -> None:
    with running(local_issuer) as mcp:
        local_issuer.go_down("refuse")
        response = initialize(mcp.client, local_issuer.mint(audience=mcp.resource, scope=SCOPE))
        assert response.status_code == 503
        assert response.json()["error"] == "temporarily_unavailable"
        assert "www-authenticate" not in response.headers
        # The same 503 as every other adapter renders (bearerguard._challenge.challenge).
        assert response.headers["retry-after"] == "10"  # the default refetch cool-down
        assert response.headers["cache-control"] == "no-store"


def test_without_the_middleware_the_sdk_answers_500(local_issuer: LocalIssuer) -> None:
    # What the SDK itself does with the verifier's UpstreamUnavailableError: Starlette's
    # ServerErrorMiddleware answers 500 (and uvicorn logs the traceback). Never a 401.
    with running(local_issuer, answer_503=False) as mcp:
        local_issuer.go_down("refuse")
        response = initialize(mcp.client, local_issuer.mint(audience=mcp.resource, scope=SCOPE))
        assert response.status_code == 500


# -- the mapping, without HTTP -----------------------------------------------------------


def verify(verifier: BearerGuardVerifier, token: str) -> SDKAccessToken | None:
    return asyncio.run(verifier.verify_token(token))


def test_the_sdk_token_carries_our_claims(local_issuer: LocalIssuer) -> None:
    resource = "https://mcp.example.test/mcp"
    verifier = BearerGuardVerifier.for_resource(local_issuer.issuer, resource)
    token = local_issuer.mint(audience=resource, scope="b a", subject="svc-1", azp="x")
    access = verify(verifier, token)
    assert access is not None
    assert access.token == token
    assert access.client_id == "svc-1"
    assert access.subject == "svc-1"
    assert access.scopes == ["a", "b"]
    assert isinstance(access.expires_at, int)
    assert access.resource == resource
    assert access.claims is not None
    assert access.claims["iss"] == local_issuer.issuer
    assert access.claims["aud"] == resource
    verifier.server.close()


def test_a_token_without_client_or_subject_is_refused(local_issuer: LocalIssuer) -> None:
    # The SDK ties sessions to (client_id, iss, sub): a token naming nobody cannot own one.
    resource = "https://mcp.example.test/mcp"
    verifier = BearerGuardVerifier.for_resource(local_issuer.issuer, resource)
    assert verify(verifier, local_issuer.mint(audience=resource, subject=None)) is None
    verifier.server.close()


def test_the_verifier_checks_the_resource_whatever_the_server_accepts(
    local_issuer: LocalIssuer,
) -> None:
    # A hand-built ResourceServer that accepts two audiences still only passes tokens for us.
    ours, theirs = "https://mcp.example.test/mcp", "https://other.example/mcp"
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=[ours, theirs]))
    verifier = BearerGuardVerifier(server, resource_url=ours)
    assert verify(verifier, local_issuer.mint(audience=ours)) is not None
    assert verify(verifier, local_issuer.mint(audience=theirs)) is None
    assert verifier.auth_settings().issuer_url is not None  # the server's only issuer
    server.close()


def test_the_helper_owns_the_audience(local_issuer: LocalIssuer) -> None:
    with pytest.raises(ConfigurationError, match="resource_url"):
        BearerGuardVerifier.for_resource(local_issuer.issuer, "https://a/mcp", audience="x")


# -- the optional dependency -----------------------------------------------------------


def import_without(blocked: str, module: str) -> subprocess.CompletedProcess[str]:
    """Import `module` in a fresh interpreter in which the package `blocked` is missing."""
    code = textwrap.dedent(f"""
        import sys
        for name in [n for n in sys.modules if n == {blocked!r} or n.startswith({blocked!r} + ".")]:
            del sys.modules[name]
        sys.modules[{blocked!r}] = None  # what a missing package looks like to `import`
        import {module}
    """)
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ | {"PYTHONPATH": str(Path(bearerguard.__file__).parents[1])},
    )


def test_importing_without_the_sdk_names_the_extra() -> None:
    result = import_without("mcp", "bearerguard.integrations.mcp")
    assert result.returncode == 1
    message = "bearerguard.integrations.mcp needs the MCP Python SDK: "
    message += 'pip install "bearerguard[mcp]"'
    assert f"ImportError: {message}" in result.stderr
