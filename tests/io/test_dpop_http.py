"""DPoP (RFC 9449) over real HTTP: the ASGI middleware under uvicorn and the WSGI middleware
under a threaded wsgiref server, both on 127.0.0.1, against a LocalIssuer.

A stolen token without its key, a replayed proof (in one process, and across two servers that
share a replay store), a proof for another method or URL and a bound token sent as a bearer
token are all refused with the challenge RFC 9449 §7.1 names; a request without credentials is
challenged for both schemes when both are accepted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from bearerguard import DPoPPolicy, ResourceServer
from bearerguard._store import MemoryStore, StoreError
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import DPoPKey, LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from ..integrations.mcp_support import free_port, serve

KINDS = ["asgi", "wsgi"]
ALGS = " ".join(DPoPPolicy().algorithms)
RESOURCE = "https://api.test/"


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        for step in ("startup", "shutdown"):
            await receive()
            await send({"type": f"lifespan.{step}.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""


@contextmanager
def served(kind: str, server: ResourceServer, **options: Any) -> Iterator[httpx.Client]:
    """An HTTP client for `server` behind the `kind` middleware, on a loopback port."""
    options = {"realm": "api", **options}
    if kind == "asgi":
        middleware = BearerAuthMiddleware(asgi_app, server, **options)
        with (
            serve(middleware, free_port()) as base,
            httpx.Client(base_url=base, timeout=10) as client,
        ):
            yield client
        return
    app = BearerAuthWSGIMiddleware(wsgi_app, server, **options)
    httpd = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        with httpx.Client(base_url=base, timeout=10) as client:
            yield client
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def call(
    client: httpx.Client,
    token: str | None,
    proof: str | None = None,
    *,
    scheme: str = "DPoP",
    method: str = "GET",
    path: str = "/orders",
) -> tuple[int, str | None]:
    headers = {} if token is None else {"authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["dpop"] = proof
    response = client.request(method, path, headers=headers)
    for secret in (token, proof):  # nothing secret is echoed
        assert secret is None or secret[-20:] not in response.text + str(response.headers)
    assert response.status_code != 500
    return response.status_code, response.headers.get("www-authenticate")


def orders_url(client: httpx.Client) -> str:
    return str(client.base_url.join("/orders"))


def proof_error(description: str) -> str:
    return (
        f'DPoP realm="api", error="invalid_dpop_proof", error_description="{description}", '
        f'algs="{ALGS}"'
    )


@pytest.mark.parametrize("kind", KINDS)
def test_dpop_bound_tokens_over_http(local_issuer: LocalIssuer, kind: str) -> None:
    key, thief = DPoPKey("ES256"), DPoPKey("PS256")
    token = local_issuer.mint(dpop_jkt=key.jkt)
    server = ResourceServer(local_issuer.issuer_config(), dpop="allowed")
    with served(kind, server) as client:
        url = orders_url(client)
        # The holder of the key, twice (a miss, then a hit): each request with a fresh proof.
        assert call(client, token, key.proof("GET", url, token)) == (200, None)
        assert call(client, token, key.proof("GET", url, token), path="/orders?page=2")[0] == 200
        # A replayed proof.
        proof = key.proof("GET", url, token)
        assert call(client, token, proof)[0] == 200
        assert call(client, token, proof) == (
            401,
            proof_error("The DPoP proof has been used before."),
        )
        # The stolen token, with the thief's own valid proof, or none.
        assert call(client, token, thief.proof("GET", url, token)) == (
            401,
            f'DPoP realm="api", error="invalid_token", error_description="The access token is '
            f'bound to another key than the DPoP proof\'s.", algs="{ALGS}"',
        )
        assert call(client, token) == (401, proof_error("The request carries no DPoP proof."))
        # As a bearer token (RFC 9449 §7.2), after it was cached by the requests above.
        assert call(client, token, scheme="Bearer") == (
            401,
            'Bearer realm="api", error="invalid_token", error_description="The access token is '
            'bound to a DPoP key and needs the DPoP scheme."',
        )
        # A proof made for another method, or another URL.
        assert call(client, token, key.proof("POST", url, token)) == (
            401,
            proof_error("The DPoP proof was made for another HTTP method."),
        )
        assert call(client, token, key.proof("GET", url + "/7", token)) == (
            401,
            proof_error("The DPoP proof was made for another URL."),
        )
        # Two proofs, and a proof as two header lines.
        assert call(client, token, f"{proof}, {proof}")[0] == 401
        # No credentials: both schemes are challenged. An unbound bearer token passes.
        assert call(client, None) == (401, f'Bearer realm="api", DPoP realm="api", algs="{ALGS}"')
        assert call(client, local_issuer.mint(), scheme="Bearer") == (200, None)


@pytest.mark.parametrize("kind", KINDS)
def test_dpop_required_over_http(local_issuer: LocalIssuer, kind: str) -> None:
    key = DPoPKey("EdDSA")
    token = local_issuer.mint(dpop_jkt=key.jkt)
    server = ResourceServer(local_issuer.issuer_config(), dpop="required")
    with served(kind, server, resource=RESOURCE) as client:
        url = orders_url(client)
        assert call(client, token, key.proof("GET", url, token)) == (200, None)
        bearer = call(client, local_issuer.mint(), scheme="Bearer")
        assert bearer[0] == 401
        assert bearer[1] is not None and bearer[1].startswith(f'DPoP realm="api", algs="{ALGS}"')
        document = json.loads(client.get("/.well-known/oauth-protected-resource").content)
        assert document["dpop_signing_alg_values_supported"] == list(DPoPPolicy().algorithms)
        assert document["dpop_bound_access_tokens_required"] is True


def test_two_servers_sharing_a_store_refuse_a_replay_across_them(local_issuer: LocalIssuer) -> None:
    key, store = DPoPKey("ES256"), MemoryStore()
    token = local_issuer.mint(dpop_jkt=key.jkt)
    first = ResourceServer(local_issuer.issuer_config(), dpop="allowed", dpop_store=store)
    second = ResourceServer(local_issuer.issuer_config(), dpop="allowed", dpop_store=store)
    with served("asgi", first) as one, served("wsgi", second) as two:
        # One URL for both, as behind a load balancer: server two is sent server one's Host.
        url = orders_url(one)
        host = {"host": one.base_url.netloc.decode()}
        proof = key.proof("GET", url, token)
        assert call(one, token, proof) == (200, None)
        fresh = {"authorization": f"DPoP {token}", "dpop": key.proof("GET", url, token)}
        assert two.get("/orders", headers=fresh | host).status_code == 200  # the URL matches
        replayed = {"authorization": f"DPoP {token}", "dpop": proof}
        answer = two.get("/orders", headers=replayed | host)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == proof_error(
            "The DPoP proof has been used before."
        )
    assert len(store) == 2


def test_the_metadata_document_without_dpop_names_none(local_issuer: LocalIssuer) -> None:
    with served("wsgi", ResourceServer(local_issuer.issuer_config()), resource=RESOURCE) as client:
        document = json.loads(client.get("/.well-known/oauth-protected-resource").content)
    assert "dpop_signing_alg_values_supported" not in document
    assert "dpop_bound_access_tokens_required" not in document


class DownStore(MemoryStore):
    """A replay store that cannot answer (a Redis outage, say)."""

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        raise StoreError("down")

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool:
        raise StoreError("down")


@pytest.mark.parametrize("kind", KINDS)
def test_a_replay_store_outage_is_503_never_an_acceptance(
    local_issuer: LocalIssuer, kind: str
) -> None:
    key = DPoPKey("ES256")
    token = local_issuer.mint(dpop_jkt=key.jkt)
    server = ResourceServer(local_issuer.issuer_config(), dpop="allowed", dpop_store=DownStore())
    with served(kind, server) as client:
        response = client.get(
            "/orders",
            headers={
                "authorization": f"DPoP {token}",
                "dpop": key.proof("GET", orders_url(client), token),
            },
        )
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "www-authenticate" not in response.headers
        assert response.json() == {
            "error": "temporarily_unavailable",
            "error_description": "The DPoP replay check is unavailable.",
        }
        assert call(client, local_issuer.mint(), scheme="Bearer") == (200, None)


@pytest.mark.parametrize("kind", KINDS)
def test_server_nonces_over_http(local_issuer: LocalIssuer, kind: str) -> None:
    key = DPoPKey("ES256")
    token = local_issuer.mint(dpop_jkt=key.jkt)
    policy = DPoPPolicy(require_nonce=True)
    with served(kind, ResourceServer(local_issuer.issuer_config(), dpop=policy)) as client:
        url = orders_url(client)
        first = client.get(
            "/orders",
            headers={"authorization": f"DPoP {token}", "dpop": key.proof("GET", url, token)},
        )
        assert first.status_code == 401
        assert first.headers["www-authenticate"].startswith(
            'DPoP realm="api", error="use_dpop_nonce"'
        )
        nonce = first.headers["dpop-nonce"]
        assert call(client, token, key.proof("GET", url, token, nonce=nonce)) == (200, None)
