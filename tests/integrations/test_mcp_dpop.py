"""DPoP (RFC 9449, MCP's SEP-1932) through both MCP SDKs, served by uvicorn on 127.0.0.1: the
SDKs' auth reads only Bearer tokens, so `DPoPMiddleware` judges the whole request in front of
it. What the client sees on the wire: tool calls with proofs, the DPoP challenges with
`resource_metadata`, server nonces, the RFC 9728 members, and 503 when the issuer is down."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from fastmcp import FastMCP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.server import MCPServer
from starlette.testclient import TestClient

from bearerguard import DPoPPolicy
from bearerguard.integrations.fastmcp import BearerGuardAuth
from bearerguard.integrations.mcp import (
    BearerGuardVerifier,
    DPoPMiddleware,
    UpstreamUnavailableMiddleware,
)
from bearerguard.testing import DPoPKey, LocalIssuer

from .mcp_support import ACCEPT, PROTOCOL_VERSION, SCOPE, Running, free_port, rpc_result, serve

ALGS = " ".join(DPoPPolicy().algorithms)
Dpop = str | DPoPPolicy


@contextmanager
def sdk_app(issuer: LocalIssuer, dpop: Dpop) -> Iterator[Running]:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    verifier = BearerGuardVerifier.for_resource(issuer.issuer, resource, dpop=dpop)  # type: ignore[arg-type]
    server = MCPServer(
        "calculator",
        token_verifier=verifier,
        auth=verifier.auth_settings(required_scopes=[SCOPE]),
        log_level="WARNING",
    )
    server.tool()(add)
    app = server.streamable_http_app()
    app.add_middleware(DPoPMiddleware, verifier=verifier)
    app.add_middleware(UpstreamUnavailableMiddleware)
    with serve(app, port) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield Running(client, resource, issuer)
    verifier.server.close()


@contextmanager
def fastmcp_app(issuer: LocalIssuer, dpop: Dpop) -> Iterator[Running]:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    auth = BearerGuardAuth.for_resource(
        issuer.issuer,
        resource,
        required_scopes=[SCOPE],
        dpop=dpop,  # type: ignore[arg-type]
    )
    server = FastMCP("calculator", auth=auth)
    server.tool(add)
    with (
        serve(server.http_app(path="/mcp"), port) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        yield Running(client, resource, issuer)
    auth.verifier.server.close()


def add(a: int, b: int) -> int:
    return a + b


App = Callable[[LocalIssuer, Dpop], AbstractContextManager[Running]]
APPS = pytest.mark.parametrize("app", [sdk_app, fastmcp_app], ids=["mcp", "fastmcp"])


def initialize_body() -> dict[str, Any]:
    params = {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "bearerguard-tests", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


class Client:
    """A DPoP client: each request with the DPoP scheme and a fresh proof for it."""

    def __init__(self, mcp: Running, key: DPoPKey, token: str) -> None:
        self.mcp, self.key, self.token = mcp, key, token
        self.nonce: str | None = None

    def post(self, body: Any, **headers: str) -> httpx.Response:
        proof = self.key.proof("POST", self.mcp.resource, self.token, nonce=self.nonce)
        dpop = {"authorization": f"DPoP {self.token}", "dpop": proof}
        return self.mcp.client.post("/mcp", json=body, headers=ACCEPT | dpop | headers)

    def call_add(self) -> Any:
        opened = self.post(initialize_body())
        rpc_result(opened)
        session = {"mcp-protocol-version": PROTOCOL_VERSION}
        if "mcp-session-id" in opened.headers:
            session["mcp-session-id"] = opened.headers["mcp-session-id"]
        ready = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, **session)
        assert ready.status_code == 202, ready.text
        call = {"name": "add", "arguments": {"a": 1, "b": 2}}
        body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}
        return rpc_result(self.post(body, **session))


def challenges(response: Any) -> list[tuple[str, dict[str, str]]]:
    """The challenges of a response's `WWW-Authenticate` field: (scheme, auth-params)."""
    value = response.headers["www-authenticate"]
    found = []
    for scheme, params in re.findall(r'(Bearer|DPoP)((?:\s*,?\s*\w+="(?:[^"\\]|\\.)*")*)', value):
        found.append((scheme, dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', params))))
    return found


def metadata_url(mcp: Running) -> str:
    return mcp.resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")


@APPS
def test_a_dpop_bound_token_calls_a_tool_with_proofs(local_issuer: LocalIssuer, app: App) -> None:
    with app(local_issuer, "allowed") as mcp:
        key = DPoPKey("ES256")
        token = local_issuer.mint(audience=mcp.resource, scope=SCOPE, dpop_jkt=key.jkt)
        result = Client(mcp, key, token).call_add()
        assert result["content"][0]["text"] == "3"
        # Bearer tokens still work beside it ("allowed").
        bearer = local_issuer.mint(audience=mcp.resource, scope=SCOPE)
        answer = mcp.client.post(
            "/mcp", json=initialize_body(), headers=ACCEPT | {"authorization": f"Bearer {bearer}"}
        )
        rpc_result(answer)


@APPS
def test_dpop_refusals_carry_the_dpop_challenges(local_issuer: LocalIssuer, app: App) -> None:
    with app(local_issuer, "allowed") as mcp:
        key = DPoPKey("ES256")
        token = local_issuer.mint(audience=mcp.resource, scope=SCOPE, dpop_jkt=key.jkt)
        client = Client(mcp, key, token)
        thief = Client(mcp, DPoPKey("ES256"), token)  # the token, another key
        other_url = mcp.resource + "/elsewhere"
        proof = key.proof("POST", other_url, token)
        cases: list[tuple[dict[str, str], str, str]] = [
            ({"dpop": proof}, "DPoP", "invalid_dpop_proof"),  # made for another URL
            ({"authorization": f"Bearer {token}"}, "Bearer", "invalid_token"),  # the downgrade
        ]
        for headers, scheme, error in cases:
            dpop_headers = {"authorization": f"DPoP {token}"} | headers
            answer = mcp.client.post("/mcp", json=initialize_body(), headers=ACCEPT | dpop_headers)
            assert answer.status_code == 401, answer.text
            ((got, params),) = challenges(answer)
            assert (got, params["error"]) == (scheme, error), answer.headers["www-authenticate"]
            assert params["resource_metadata"] == metadata_url(mcp)
            assert answer.json()["error"] == error
            assert token not in answer.text and token not in answer.headers["www-authenticate"]
        answer = thief.post(initialize_body())
        assert answer.status_code == 401
        ((scheme, params),) = challenges(answer)
        assert (scheme, params["error"], params["algs"]) == ("DPoP", "invalid_token", ALGS)
        # A proof used twice: the second is a replay.
        proof = key.proof("POST", mcp.resource, token)
        headers = ACCEPT | {"authorization": f"DPoP {token}", "dpop": proof}
        rpc_result(mcp.client.post("/mcp", json=initialize_body(), headers=headers))
        again = mcp.client.post("/mcp", json=initialize_body(), headers=headers)
        assert again.status_code == 401
        assert challenges(again)[0][1]["error"] == "invalid_dpop_proof"
        # A bound token without the scope: the SDK's 403, as for bearer tokens.
        narrow = local_issuer.mint(audience=mcp.resource, scope="other", dpop_jkt=key.jkt)
        assert Client(mcp, key, narrow).post(initialize_body()).status_code == 403
        assert client.post(initialize_body()).status_code == 200


@APPS
def test_no_credentials_is_challenged_for_each_scheme(local_issuer: LocalIssuer, app: App) -> None:
    for dpop, schemes in (("allowed", ["Bearer", "DPoP"]), ("required", ["DPoP"])):
        with app(local_issuer, dpop) as mcp:
            answer = mcp.client.post("/mcp", json=initialize_body(), headers=ACCEPT)
            assert answer.status_code == 401
            found = challenges(answer)
            assert [scheme for scheme, _ in found] == schemes
            for scheme, params in found:
                assert "error" not in params  # RFC 6750 §3.1: nothing was sent
                assert params["resource_metadata"] == metadata_url(mcp)
                assert params.get("algs") == (ALGS if scheme == "DPoP" else None)
                # FastMCP's challenge names the scopes to ask for (MCP's scope selection): kept.
                assert params.get("scope") == (SCOPE if app is fastmcp_app else None)
            document = mcp.client.get("/.well-known/oauth-protected-resource/mcp").json()
            assert document["dpop_signing_alg_values_supported"] == list(DPoPPolicy().algorithms)
            assert document["dpop_bound_access_tokens_required"] is (dpop == "required")
            assert document["resource"] == mcp.resource and document["scopes_supported"] == [SCOPE]
            if dpop == "required":  # bearer tokens are refused there
                bearer = local_issuer.mint(audience=mcp.resource, scope=SCOPE)
                headers = ACCEPT | {"authorization": f"Bearer {bearer}"}
                answer = mcp.client.post("/mcp", json=initialize_body(), headers=headers)
                assert answer.status_code == 401


@APPS
def test_a_server_nonce_is_sent_and_honoured(local_issuer: LocalIssuer, app: App) -> None:
    with app(local_issuer, DPoPPolicy(require_nonce=True)) as mcp:
        key = DPoPKey("ES256")
        token = local_issuer.mint(audience=mcp.resource, scope=SCOPE, dpop_jkt=key.jkt)
        client = Client(mcp, key, token)
        first = client.post(initialize_body())
        assert first.status_code == 401
        assert challenges(first)[0][1]["error"] == "use_dpop_nonce"
        client.nonce = first.headers["dpop-nonce"]
        assert client.call_add()["content"][0]["text"] == "3"


@APPS
def test_an_unreachable_issuer_is_503_for_a_dpop_request(
    local_issuer: LocalIssuer, app: App
) -> None:
    with app(local_issuer, "allowed") as mcp:
        key = DPoPKey("ES256")
        token = local_issuer.mint(audience=mcp.resource, scope=SCOPE, dpop_jkt=key.jkt)
        local_issuer.go_down("refuse")
        answer = Client(mcp, key, token).post(initialize_body())
        assert answer.status_code == 503 and "retry-after" in answer.headers


@APPS
def test_with_dpop_off_the_middleware_changes_nothing(local_issuer: LocalIssuer, app: App) -> None:
    with app(local_issuer, "off") as mcp:
        key = DPoPKey("ES256")
        token = local_issuer.mint(audience=mcp.resource, scope=SCOPE, dpop_jkt=key.jkt)
        answer = Client(mcp, key, token).post(initialize_body())
        assert answer.status_code == 401  # the DPoP scheme is not one this server reads
        assert [scheme for scheme, _ in challenges(answer)] == ["Bearer"]
        document = mcp.client.get("/.well-known/oauth-protected-resource/mcp").json()
        assert "dpop_signing_alg_values_supported" not in document


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)


@pytest.fixture(scope="module")
def in_process() -> Iterator[tuple[TestClient, str, LocalIssuer]]:
    """The official SDK's app with DPoP on, in process (hypothesis runs many requests)."""
    with LocalIssuer() as issuer:
        resource = "http://testserver/mcp"
        verifier = BearerGuardVerifier.for_resource(issuer.issuer, resource, dpop="allowed")
        server = MCPServer(
            "calculator",
            token_verifier=verifier,
            auth=verifier.auth_settings(required_scopes=[SCOPE]),
            log_level="WARNING",
        )
        app = server.streamable_http_app()
        app.add_middleware(DPoPMiddleware, verifier=verifier)
        app.add_middleware(UpstreamUnavailableMiddleware)
        with TestClient(app) as client:
            yield client, resource, issuer
        verifier.server.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scheme=st.sampled_from(["DPoP", "dpop", "Bearer", "Basic", ""]),
    proofs=st.lists(header_text, max_size=2),
    garbled=st.booleans(),
)
def test_any_dpop_header_is_a_401_or_400_never_a_500(
    in_process: tuple[TestClient, str, LocalIssuer], scheme: str, proofs: list[str], garbled: bool
) -> None:
    client, resource, issuer = in_process
    key = DPoPKey("ES256")
    token = issuer.mint(audience=resource, scope=SCOPE, dpop_jkt=key.jkt)
    if not garbled and proofs:
        proofs[0] = key.proof("POST", resource, token)[:-2] + proofs[0][:2]  # a broken signature
    headers = [("authorization", f"{scheme} {token}".strip())] + [("dpop", p) for p in proofs]
    answer = client.post("/mcp", json=initialize_body(), headers=[*ACCEPT.items(), *headers])
    expected = {  # status, first challenge's scheme and error
        "DPoP": (401, "DPoP", "invalid_dpop_proof"),  # none, two, or a bad one
        "dpop": (401, "DPoP", "invalid_dpop_proof"),
        "Bearer": (401, "Bearer", "invalid_token"),  # a bound token as a bearer token
        "Basic": (401, "Bearer", None),  # no credentials of an accepted scheme
        "": (401, "Bearer", None),  # the token alone reads as a scheme of its own
    }[scheme]
    first, params = challenges(answer)[0]
    assert (answer.status_code, first, params.get("error")) == expected, answer.text
    text = answer.text + answer.headers.get("www-authenticate", "")
    assert token not in text and not any(p and len(p) > 8 and p in text for p in proofs)
