"""An MCP server protected by bearerguard, with a local issuer: `python examples/mcp_server.py`.

Needs `pip install "bearerguard[mcp]"`. The server at http://127.0.0.1:8000/mcp accepts tokens
of the embedded issuer whose `aud` is that URL and whose scope includes `tools.call`.
"""

from __future__ import annotations

import sys

import uvicorn
from mcp.server import MCPServer

from bearerguard.integrations.mcp import BearerGuardVerifier, UpstreamUnavailableMiddleware
from bearerguard.testing import LocalIssuer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
RESOURCE = f"http://127.0.0.1:{PORT}/mcp"

with LocalIssuer() as issuer:
    verifier = BearerGuardVerifier.for_resource(issuer.issuer, RESOURCE)
    server = MCPServer(
        "calculator",
        token_verifier=verifier,
        auth=verifier.auth_settings(required_scopes=["tools.call"]),
    )

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    app = server.streamable_http_app()
    app.add_middleware(UpstreamUnavailableMiddleware)  # AS down: 503, not 500

    token = issuer.mint(audience=RESOURCE, scope="tools.call")
    print(f"MCP server: {RESOURCE} (issuer {issuer.issuer})")
    print(f"Metadata:   curl http://127.0.0.1:{PORT}/.well-known/oauth-protected-resource/mcp")
    print(f"No token:   curl -i -X POST {RESOURCE}")
    print(
        f"Initialize: curl -i {RESOURCE} -H 'Authorization: Bearer {token}' "
        "-H 'Accept: application/json, text/event-stream' -H 'Content-Type: application/json' "
        """-d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"""
        """"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'"""
    )
    print("Or point an MCP client at the URL with that bearer token.")
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
