"""The MCP Python SDK's streamable-HTTP app behind BearerGuardVerifier: what only this SDK does.

The contract both MCP integrations keep is in test_mcp_contract.py, which serves this app.
"""

from __future__ import annotations

import asyncio
import logging
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

from .mcp_support import SCOPE, Running, free_port, initialize, serve


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
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    # A hand-built ResourceServer that accepts two audiences still only passes tokens for us.
    ours, theirs = "https://mcp.example.test/mcp", "https://other.example/mcp"
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=[ours, theirs]))
    verifier = BearerGuardVerifier(server, resource_url=ours)
    assert verify(verifier, local_issuer.mint(audience=ours)) is not None
    with caplog.at_level(logging.INFO, "bearerguard"):
        assert verify(verifier, local_issuer.mint(audience=theirs)) is None
    (refused,) = [r for r in caplog.records if r.getMessage().startswith("refused: ")]
    assert refused.getMessage() == (
        f"refused: AUDIENCE iss={local_issuer.issuer!r} client_id='test-client' "
        f"(aud does not name {ours})"
    )
    assert refused.bearerguard["detail"] == f"aud does not name {ours}"  # type: ignore[attr-defined]
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
