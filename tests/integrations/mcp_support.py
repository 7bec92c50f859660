"""Shared by the MCP tests: serve an ASGI app with uvicorn on 127.0.0.1, and a tiny MCP client.

The client speaks JSON-RPC over streamable HTTP with httpx, so what the tests check is the wire:
status codes, `WWW-Authenticate`, and tool results.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from bearerguard import Introspection
from bearerguard.testing import LocalIssuer

PROTOCOL_VERSION = "2025-06-18"
ACCEPT = {"accept": "application/json, text/event-stream"}
SCOPE = "tools.call"  # what the test servers require


@dataclass
class Running:
    """A served MCP app: a client for it, its resource URL, and the issuer of its tokens."""

    client: httpx.Client
    resource: str
    issuer: LocalIssuer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """Run `app` under uvicorn on 127.0.0.1:`port` (lifespan on) until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def rpc_result(response: httpx.Response) -> Any:
    """The JSON-RPC `result` of a JSON or a server-sent-events answer."""
    assert response.status_code == 200, (response.status_code, response.text)
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:] for line in response.text.splitlines() if line.startswith("data:")]
        message = json.loads(data[-1])
    else:
        message = response.json()
    assert "error" not in message, message
    return message["result"]


def post(client: httpx.Client, body: Any, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return client.post("/mcp", json=body, headers=ACCEPT | headers)


def initialize(client: httpx.Client, token: str | None) -> httpx.Response:
    params = {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "bearerguard-tests", "version": "1"},
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    return post(client, body, token)


def call_tool(client: httpx.Client, token: str, name: str, arguments: dict[str, Any]) -> Any:
    """initialize, notifications/initialized, then tools/call; returns the call's result."""
    opened = initialize(client, token)
    rpc_result(opened)
    session = {"mcp-protocol-version": PROTOCOL_VERSION}
    if "mcp-session-id" in opened.headers:
        session["mcp-session-id"] = opened.headers["mcp-session-id"]
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    ready = post(client, notification, token, **session)
    assert ready.status_code == 202, ready.text
    call = {"name": name, "arguments": arguments}
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}
    return rpc_result(post(client, body, token, **session))


def challenge(response: httpx.Response) -> dict[str, str]:
    """The auth-params of a `Bearer` challenge (quoted-string values)."""
    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer"
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', params))


def refusal(mcp: Running, token: str | None) -> tuple[int, str | None]:
    """Status and challenge `error` of an initialize request with `token`."""
    response = initialize(mcp.client, token)
    return response.status_code, challenge(response).get("error")


def check_metadata(mcp: Running) -> None:
    """The RFC 9728 document names the resource, its issuer (spelled as configured), the scope."""
    response = mcp.client.get("/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    document = response.json()
    assert document["resource"] == mcp.resource
    assert document["authorization_servers"] == [mcp.issuer.issuer]
    assert document["scopes_supported"] == [SCOPE]


def introspection_at(issuer: LocalIssuer) -> Introspection:
    return Introspection(
        endpoint=issuer.introspection_endpoint, client_id="test-client", client_secret="test-secret"
    )
