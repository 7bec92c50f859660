"""The test kit as a user's test suite meets it: LocalIssuer.issuer_config(), the session-scoped
issuer fixture, and access_token() for unit tests of views."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from starlette.requests import Request

import bearerguard.pytest_plugin as plugin
from bearerguard import (
    AccessToken,
    ConfigurationError,
    InsufficientScopeError,
    InvalidTokenError,
    JWKSPolicy,
    Reason,
    Requirement,
    ResourceServer,
)
from bearerguard.asgi import SCOPE_KEY
from bearerguard.integrations.starlette import get_token
from bearerguard.testing import LocalIssuer, access_token

from .conftest import Twin

# The plugin's fixtures (see test_testing.py for why they are bound here by name).
local_issuer = plugin.local_issuer
local_issuer_session = plugin.local_issuer_session
local_issuer_factory = plugin.local_issuer_factory

IssuerFactory = Callable[..., LocalIssuer]


# -- issuer_config(): rotation works out of the box ------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_token_of_a_rotated_key_is_accepted_at_once(
    local_issuer_factory: IssuerFactory, twin: Twin, alg: str
) -> None:
    # The natural test: verify, rotate, verify a token of the new key, right away.
    issuer = local_issuer_factory(algorithms=(alg,))
    server = ResourceServer(issuer.issuer_config())
    first = issuer.mint(scope="orders.read")
    assert twin.verify(server, first).scopes == {"orders.read"}
    assert issuer.count("jwks") == 1

    issuer.rotate()
    second = issuer.mint(scope="orders.read")
    assert twin.verify(server, second).client_id == "test-client"
    assert issuer.count("jwks") == 2  # the unknown kid made one refetch, at once
    assert twin.verify(server, first).scopes == {"orders.read"}  # the old key is kept

    issuer.rotate(keep_old=False)  # the second key is no longer published
    assert twin.verify(server, issuer.mint()).issuer == issuer.issuer
    with pytest.raises(InvalidTokenError) as info:  # its key left the JWKS: cached or not
        twin.verify(server, second)
    assert info.value.reason is Reason.UNKNOWN_KID
    assert issuer.count("jwks") == 4  # without a cool-down, each unknown kid asks again


def test_a_default_server_keeps_the_production_cool_down(
    local_issuer_factory: IssuerFactory,
) -> None:
    # What issuer_config() changes, and why: the same test with a plain Issuer fails.
    issuer = local_issuer_factory(algorithms=("ES256",))
    config = issuer.issuer_config(jwks_policy=JWKSPolicy())
    with ResourceServer(config) as server:
        server.verify(issuer.mint())
        issuer.rotate()
        with pytest.raises(InvalidTokenError) as info:
            server.verify(issuer.mint())
    assert info.value.reason is Reason.UNKNOWN_KID


def test_issuer_config_trusts_the_issuer_with_every_algorithm(local_issuer: LocalIssuer) -> None:
    config = local_issuer.issuer_config()
    assert (config.issuer, config.audience) == (local_issuer.issuer, (local_issuer.audience,))
    assert config.algorithms == local_issuer.algorithms == plugin.LOCAL_ISSUER_ALGORITHMS
    assert config.secret_bytes == local_issuer.shared_secret("HS256")
    assert config.jwks_policy == JWKSPolicy(min_refetch_interval=0)
    with ResourceServer(config) as server:
        for alg in local_issuer.algorithms:
            assert server.verify(local_issuer.mint(alg=alg, scope="a b")).scopes == {"a", "b"}


def test_issuer_config_overrides(local_issuer_factory: IssuerFactory) -> None:
    issuer = local_issuer_factory(algorithms=("ES256", "HS256", "HS384"), audience="api://x")
    with pytest.raises(ValueError, match="one shared secret"):
        issuer.issuer_config()
    only_es = issuer.issuer_config(algorithms=["ES256"], rfc9068=True)
    assert (only_es.algorithms, only_es.secret_bytes, only_es.rfc9068) == (("ES256",), None, True)
    hs384 = issuer.issuer_config(algorithms=["HS384"])
    assert hs384.secret_bytes == issuer.shared_secret("HS384")
    chosen = issuer.issuer_config(shared_secret=issuer.shared_secret("HS384"))
    assert chosen.algorithms == ("ES256", "HS256", "HS384")
    with ResourceServer(hs384) as server:
        assert server.verify(issuer.mint(alg="HS384")).claims["aud"] == "api://x"
        with pytest.raises(InvalidTokenError):
            server.verify(issuer.mint(alg="HS256"))


# -- the session-scoped issuer ---------------------------------------------------------------


@pytest.fixture(scope="module")
def session_server(local_issuer_session: LocalIssuer) -> Iterator[tuple[ResourceServer, int]]:
    # A module-scoped fixture may only use a session- or module-scoped one: pytest would
    # refuse this one (ScopeMismatch) if local_issuer_session were per test.
    with ResourceServer(local_issuer_session.issuer_config()) as server:
        server.warm()
        yield server, local_issuer_session.count("jwks")


@pytest.mark.parametrize("alg", plugin.LOCAL_ISSUER_ALGORITHMS)
def test_session_issuer_is_shared_and_started(
    local_issuer_session: LocalIssuer, session_server: tuple[ResourceServer, int], alg: str
) -> None:
    server, fetched = session_server
    token = local_issuer_session.mint(alg=alg, scope="orders.read")
    assert server.verify(token).scopes == {"orders.read"}
    assert local_issuer_session.count("jwks") == fetched  # the keys it had at the start


# -- access_token(): what a ResourceServer returns, without one ------------------------------

SHAPES: list[dict[str, Any]] = [
    {},
    {"scope": "orders.read orders.write"},
    {"scope": ["orders.read", "admin"]},
    {"scp": "a b", "scope": "c"},
    {"subject": "svc", "scope": "x"},
    {"subject": None, "omit": ["client_id"], "azp": "entra-app"},  # Entra v2: azp only
    {"cid": "okta-client", "client_id": None},  # a JSON null is no client id
    {"omit": ["jti", "iat"], "client_id": "other"},
    {"audience": ["https://api.example.test", "other"]},
    {"realm_access": {"roles": ["r1", "r2"]}, "tags": [1, {"deep": [True, None]}]},
    {"expires_in": 5.5},
]


@pytest.fixture(scope="module")
def frozen_issuer() -> Iterator[tuple[LocalIssuer, float]]:
    now = float(int(time.time()))
    with LocalIssuer(algorithms=("ES256",), clock=lambda: now) as issuer:
        yield issuer, now


@pytest.mark.parametrize("shape", SHAPES)
def test_access_token_is_what_the_server_returns_for_the_minted_token(
    frozen_issuer: tuple[LocalIssuer, float], twin: Twin, shape: dict[str, Any]
) -> None:
    # The oracle is bearerguard itself: the same claims, minted and verified over HTTP.
    issuer, now = frozen_issuer
    server = ResourceServer(issuer.issuer_config())
    verified = twin.verify(server, issuer.mint(**{"jti": "fixed", **shape}))
    made = access_token(
        **{"issuer": issuer.issuer, "audience": issuer.audience, "jti": "fixed", **shape},
        clock=lambda: now,
    )
    assert made == verified
    assert made.claims == verified.claims  # `claims` takes part in ==; said for the reader
    with pytest.raises(TypeError):
        made.claims["sub"] = "x"  # type: ignore[index]  # read-only, like a verified token's


def test_access_token_defaults_and_options() -> None:
    token = access_token(scope="orders.read", clock=lambda: 1000.0)
    assert token == AccessToken(
        issuer="https://issuer.example.test",
        subject="test-client",
        client_id="test-client",
        scopes=frozenset({"orders.read"}),
        claims=token.claims,
        expires_at=1300.0,
    )
    assert dict(token.claims) == {
        "iss": "https://issuer.example.test",
        "sub": "test-client",
        "aud": "https://api.example.test",
        "iat": 1000,
        "exp": 1300,
        "jti": token.claims["jti"],
        "client_id": "test-client",
        "scope": "orders.read",
    }
    assert access_token().claims["jti"] != token.claims["jti"]  # a new one each time
    lasting = access_token(expires_in=None, source="introspection", audience=None)
    assert (lasting.expires_at, lasting.source) == (None, "introspection")
    assert {"exp", "aud"}.isdisjoint(lasting.claims)
    assert access_token(scope=("a", "b")).claims["scope"] == ("a", "b")
    with pytest.raises(InvalidTokenError):  # a scope claim the server would refuse
        access_token(scope=None, scp=5)


async def orders(request: Request) -> dict[str, Any]:
    """A view as users write it: it reads the token the middleware verified."""
    token = get_token(request)
    assert token is not None
    Requirement.of("orders.read").check(token)
    return {"client": token.client_id, "orders": [1042]}


@pytest.mark.anyio
async def test_access_token_in_a_unit_test_of_a_view() -> None:
    token = access_token(scope="orders.read", subject="orders-client")
    request = Request({"type": "http", "method": "GET", "path": "/orders", SCOPE_KEY: token})
    assert await orders(request) == {"client": "orders-client", "orders": [1042]}
    lacking = Request({"type": "http", SCOPE_KEY: access_token(scope="orders.write")})
    with pytest.raises(InsufficientScopeError):
        await orders(lacking)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_local_issuer_refuses_a_bare_algorithm_string() -> None:
    # "RS256" would be read as the algorithms R, S, 2, 5, 6.
    with pytest.raises(ConfigurationError, match="algorithms"):
        LocalIssuer(algorithms="RS256")


def test_mint_omits_one_claim_named_by_a_string(local_issuer: LocalIssuer) -> None:
    claims = jwt.decode(local_issuer.mint(omit="exp"), options={"verify_signature": False})
    assert "exp" not in claims
    assert {"iss", "sub", "iat", "jti"} <= claims.keys()  # not the claims named by its letters
