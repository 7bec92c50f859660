"""DPoP on a websocket handshake: it is an HTTP GET (RFC 6455 §4.1), so its proof names the
http(s) URL (RFC 9449 §4.2 `htu`), while the ASGI scope says `ws`/`wss`."""

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from bearerguard import DPoPPolicy, ResourceServer
from bearerguard.asgi import BearerAuthMiddleware, context
from bearerguard.integrations.starlette import requires
from bearerguard.testing import DPoPKey, LocalIssuer

from ..helpers import aclose_on

ALGS = " ".join(DPoPPolicy().algorithms)


@requires("chat", dpop="required")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


def app(server: ResourceServer) -> Starlette:
    middleware = [Middleware(BearerAuthMiddleware, server=server)]
    return Starlette(routes=[WebSocketRoute("/chat", chat)], middleware=middleware)


def denial(client: TestClient, headers: dict[str, str]) -> WebSocketDenialResponse:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/chat", headers=headers),
    ):
        pass
    assert isinstance(closed.value, WebSocketDenialResponse)
    return closed.value


def test_a_websocket_handshake_with_a_dpop_proof_for_its_http_url(
    local_issuer: LocalIssuer,
) -> None:
    key = DPoPKey("ES256")
    token = local_issuer.mint(scope="chat", dpop_jkt=key.jkt)
    server = ResourceServer(local_issuer.issuer_config(), dpop="allowed")
    with TestClient(app(server)) as client:
        proof = key.proof("GET", "http://testserver/chat", token)
        headers = {"authorization": f"DPoP {token}", "dpop": proof}
        with client.websocket_connect("/chat", headers=headers) as ws:  # the scope says ws://
            assert ws.receive_text() == "hello"
        # A proof naming the ws URL is not one for this request's target URI.
        proof = key.proof("GET", "ws://testserver/chat", token)
        refused = denial(client, {"authorization": f"DPoP {token}", "dpop": proof})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')
        # The route requires DPoP: a bearer token with the scope is refused at the handshake.
        bearer = local_issuer.mint(scope="chat")
        refused = denial(client, {"authorization": f"Bearer {bearer}"})
        assert refused.status_code == 401
        challenge = refused.headers["www-authenticate"]
        assert challenge.startswith('DPoP error="invalid_token"') and f'algs="{ALGS}"' in challenge
        aclose_on(client, server)


@pytest.mark.parametrize(
    ("scheme", "port", "url"),
    [
        ("ws", 80, "http://api.example/chat"),
        ("wss", 443, "https://api.example/chat"),
        ("wss", 8443, "https://api.example:8443/chat"),
        ("http", 80, "http://api.example/chat"),
    ],
)
def test_the_context_url_of_a_websocket_is_its_http_url(scheme: str, port: int, url: str) -> None:
    host = "api.example" if port in (80, 443) else f"api.example:{port}"
    scope = {
        "type": "websocket" if scheme.startswith("ws") else "http",
        "scheme": scheme,
        "path": "/chat",
        "raw_path": b"/chat",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
    }
    assert context(scope, None).url == url
