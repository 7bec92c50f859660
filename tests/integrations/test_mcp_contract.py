"""The verifier contract both MCP integrations keep, each behind its SDK's real streamable-HTTP app.

Every case runs once with the MCP Python SDK (`BearerGuardVerifier`) and once with FastMCP
(`BearerGuardAuth`), served by uvicorn on 127.0.0.1 and called over HTTP against a LocalIssuer.
What only one SDK does is tested in test_mcp.py or test_fastmcp.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

import pytest

from bearerguard import Introspection
from bearerguard.testing import LocalIssuer

from ..io.test_hostile_input import HOSTILE
from .mcp_support import (
    SCOPE,
    Running,
    call_tool,
    challenge,
    check_metadata,
    initialize,
    introspection_at,
    refusal,
)
from .test_fastmcp import running as running_fastmcp
from .test_mcp import running as running_mcp


class Serve(Protocol):
    def __call__(
        self, issuer: LocalIssuer, *, introspection: Introspection | None = None
    ) -> AbstractContextManager[Running]: ...


SDKS: dict[str, Serve] = {"mcp": running_mcp, "fastmcp": running_fastmcp}


@pytest.fixture(params=list(SDKS))
def serve(request: pytest.FixtureRequest) -> Serve:
    """Runs an SDK's app behind bearerguard: `with serve(issuer) as mcp: ...`."""
    return SDKS[request.param]


@pytest.fixture
def mcp(serve: Serve, local_issuer: LocalIssuer) -> Iterator[Running]:
    with serve(local_issuer) as app:
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
    result = call_tool(mcp.client, token, "add", {"a": 1, "b": 1})
    assert result["structuredContent"] == {"result": 2}


def _bad_signature(mcp: Running) -> str:
    # A well-formed signature of another token: only the signature check can refuse it.
    one = mcp.issuer.mint(audience=mcp.resource, scope=SCOPE)
    other = mcp.issuer.mint(audience=mcp.resource, scope="other")
    return one.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]


@pytest.mark.parametrize(
    ("token_kind", "reason"),
    [("bad-signature", "BAD_SIGNATURE"), ("expired", "EXPIRED"), ("garbage", "MALFORMED")],
)
def test_an_invalid_token_is_401(
    mcp: Running, caplog: pytest.LogCaptureFixture, token_kind: str, reason: str
) -> None:
    tokens: dict[str, Callable[[], str]] = {
        "bad-signature": lambda: _bad_signature(mcp),
        "expired": lambda: mcp.issuer.mint(audience=mcp.resource, scope=SCOPE, expires_in=-3600),
        "garbage": lambda: "not-a-token",
    }
    token = tokens[token_kind]()
    assert refusal(mcp, token) == (401, "invalid_token")
    assert f"refused: {reason} " in caplog.text  # refused for this reason, not another


def test_hostile_tokens_are_401(mcp: Running, caplog: pytest.LogCaptureFixture) -> None:
    # Huge integers and deep nesting in tokens the issuer signed (issue 13): never a 500.
    for make in HOSTILE.values():
        assert refusal(mcp, make(mcp.issuer)) == (401, "invalid_token")
    assert caplog.text.count("refused: MALFORMED ") == len(HOSTILE)


def test_a_missing_scope_is_403(mcp: Running) -> None:
    token = mcp.issuer.mint(audience=mcp.resource, scope="other")
    assert refusal(mcp, token) == (403, "insufficient_scope")


def test_the_protected_resource_metadata_is_served(mcp: Running) -> None:
    check_metadata(mcp)


def test_an_opaque_token_is_introspected(serve: Serve, local_issuer: LocalIssuer) -> None:
    with serve(local_issuer, introspection=introspection_at(local_issuer)) as mcp:
        token = local_issuer.mint_opaque(scope=SCOPE, aud=mcp.resource)
        result = call_tool(mcp.client, token, "add", {"a": 4, "b": 5})
        assert result["structuredContent"] == {"result": 9}
        # MCP binds tokens to the server: an answer without our `aud` is not enough.
        unbound = local_issuer.mint_opaque(scope=SCOPE)
        assert initialize(mcp.client, unbound).status_code == 401
        other = local_issuer.mint_opaque(scope=SCOPE, aud="https://other.example/mcp")
        assert initialize(mcp.client, other).status_code == 401


def test_a_repeated_opaque_token_is_introspected_once(
    serve: Serve, local_issuer: LocalIssuer
) -> None:
    with serve(local_issuer, introspection=introspection_at(local_issuer)) as mcp:
        token = local_issuer.mint_opaque(scope=SCOPE, aud=mcp.resource)
        for a in (1, 2):  # two sessions: six requests carrying the token
            result = call_tool(mcp.client, token, "add", {"a": a, "b": 1})
            assert result["structuredContent"] == {"result": a + 1}
        assert local_issuer.count("introspect") == 1  # then answered from the cache
        another = local_issuer.mint_opaque(scope=SCOPE, aud=mcp.resource)
        call_tool(mcp.client, another, "add", {"a": 0, "b": 0})
        assert local_issuer.count("introspect") == 2  # the cache is per token


def test_an_unreachable_issuer_is_503_not_401(serve: Serve, local_issuer: LocalIssuer) -> None:
    with serve(local_issuer) as mcp:
        local_issuer.go_down("refuse")
        response = initialize(mcp.client, local_issuer.mint(audience=mcp.resource, scope=SCOPE))
        assert response.status_code == 503
        assert response.json()["error"] == "temporarily_unavailable"
        assert "www-authenticate" not in response.headers
        # The same 503 as every other adapter renders (bearerguard._challenge.challenge).
        assert response.headers["retry-after"] == "10"  # the default refetch cool-down
        assert response.headers["cache-control"] == "no-store"
