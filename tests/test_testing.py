"""Tests for bearerguard.testing.LocalIssuer and the pytest plugin, over real HTTP."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

import bearerguard.pytest_plugin as plugin
from bearerguard.testing import LocalIssuer

# The plugin's fixtures. Not `pytest_plugins = ["bearerguard.pytest_plugin"]`: once bearerguard
# is installed, its pytest11 entry point registers that module as "bearerguard", and pytest
# refuses to register the same module again under a second name.
local_issuer = plugin.local_issuer
local_issuer_factory = plugin.local_issuer_factory

IssuerFactory = Callable[..., LocalIssuer]
ASYMMETRIC = ("RS256", "PS256", "ES256", "EdDSA")
CLIENT = ("test-client", "test-secret")
CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture
def issuer(local_issuer_factory: IssuerFactory) -> LocalIssuer:
    """A quick-to-create issuer (an EC key instead of RSA)."""
    return local_issuer_factory(algorithms=("ES256",))


def verify(http: httpx.Client, issuer: LocalIssuer, token: str) -> dict[str, Any]:
    """Verify `token` with plain PyJWT against the JWKS fetched from the issuer."""
    header = jwt.get_unverified_header(token)
    (jwk,) = [k for k in http.get(issuer.jwks_uri).json()["keys"] if k["kid"] == header["kid"]]
    return jwt.decode(
        token,
        jwt.PyJWK(jwk),
        algorithms=[header["alg"]],
        audience=issuer.audience,
        issuer=issuer.issuer,
    )


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An Authorization header for client_secret_basic (credentials already form-encoded)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def published_kids(http: httpx.Client, issuer: LocalIssuer) -> set[str]:
    return {key["kid"] for key in http.get(issuer.jwks_uri).json()["keys"]}


def introspect(http: httpx.Client, issuer: LocalIssuer, token: str) -> dict[str, Any]:
    response = http.post(issuer.introspection_endpoint, data={"token": token}, auth=CLIENT)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


# -- discovery and JWKS ---------------------------------------------------------------------


def test_discovery_documents_for_an_issuer_with_a_path(
    http: httpx.Client, local_issuer_factory: IssuerFactory
) -> None:
    issuer = local_issuer_factory(algorithms=("ES256",), path="/tenant/")
    origin = f"http://127.0.0.1:{issuer.port}"
    assert issuer.issuer == f"{origin}/tenant"
    assert issuer.openid_configuration_url == f"{origin}/tenant/.well-known/openid-configuration"
    assert issuer.oauth_metadata_url == f"{origin}/.well-known/oauth-authorization-server/tenant"

    for url in (issuer.openid_configuration_url, issuer.oauth_metadata_url):
        response = http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        document = response.json()
        assert document == issuer.metadata()
        assert document["issuer"] == issuer.issuer
        assert document["jwks_uri"] == f"{origin}/tenant/jwks"
        assert document["token_endpoint"] == f"{origin}/tenant/token"
        assert document["introspection_endpoint"] == f"{origin}/tenant/introspect"
        assert document["grant_types_supported"] == ["client_credentials"]
        methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
        assert document["token_endpoint_auth_methods_supported"] == methods
        assert document["introspection_endpoint_auth_methods_supported"] == methods

    misplaced = http.get(f"{issuer.issuer}/.well-known/oauth-authorization-server")
    assert misplaced.status_code == 404


@pytest.mark.parametrize(
    ("discovery", "oidc_status", "oauth_status"),
    [("oidc", 200, 404), ("oauth", 404, 200), ("none", 404, 404)],
)
def test_discovery_can_be_restricted(
    http: httpx.Client,
    local_issuer_factory: IssuerFactory,
    discovery: str,
    oidc_status: int,
    oauth_status: int,
) -> None:
    issuer = local_issuer_factory(algorithms=("ES256",), discovery=discovery)
    assert http.get(issuer.openid_configuration_url).status_code == oidc_status
    assert http.get(issuer.oauth_metadata_url).status_code == oauth_status


def test_jwks_publishes_public_asymmetric_keys(
    http: httpx.Client, local_issuer: LocalIssuer
) -> None:
    response = http.get(local_issuer.jwks_uri)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = {key["kid"]: key for key in response.json()["keys"]}
    assert set(keys) == {local_issuer.kid(alg) for alg in ASYMMETRIC}
    assert local_issuer.kid("HS256") not in keys
    expected = {"RS256": ("RSA", None), "PS256": ("RSA", None), "ES256": ("EC", "P-256")}
    expected["EdDSA"] = ("OKP", "Ed25519")
    for alg, (kty, crv) in expected.items():
        key = keys[local_issuer.kid(alg)]
        assert (key["kty"], key.get("crv"), key["alg"], key["use"]) == (kty, crv, alg, "sig")
        assert not {"d", "p", "q", "k", "key_ops"} & set(key)
    assert response.json() == local_issuer.jwks()


def test_jwks_cache_control_can_be_omitted(
    http: httpx.Client, local_issuer_factory: IssuerFactory
) -> None:
    issuer = local_issuer_factory(algorithms=("ES256",), cache_max_age=None)
    assert "cache-control" not in http.get(issuer.jwks_uri).headers


def test_local_issuer_fixture_has_every_algorithm(local_issuer: LocalIssuer) -> None:
    assert len({local_issuer.kid(alg) for alg in (*ASYMMETRIC, "HS256")}) == 5
    assert len(local_issuer.shared_secret()) >= 32
    with pytest.raises(ValueError, match="not an HMAC"):
        local_issuer.shared_secret("RS256")
    with pytest.raises(ValueError, match="no ES512 key"):
        local_issuer.kid("ES512")


# -- minting --------------------------------------------------------------------------------


def test_minted_tokens_verify_against_the_published_jwks(
    http: httpx.Client, local_issuer: LocalIssuer
) -> None:
    for alg in ASYMMETRIC:
        token = local_issuer.mint(alg=alg, scope="read write")
        header = jwt.get_unverified_header(token)
        assert header == {"alg": alg, "typ": "at+jwt", "kid": local_issuer.kid(alg)}
        claims = verify(http, local_issuer, token)
        assert claims["sub"] == claims["client_id"] == "test-client"
        assert claims["aud"] == "https://api.example.test"
        assert claims["scope"] == "read write"
        assert claims["exp"] - claims["iat"] == 300
        assert claims["jti"]

    hs_token = local_issuer.mint(alg="HS256")
    claims = jwt.decode(
        hs_token, local_issuer.shared_secret(), algorithms=["HS256"], audience=local_issuer.audience
    )
    assert claims["iss"] == local_issuer.issuer


def test_mint_options(local_issuer_factory: IssuerFactory) -> None:
    issuer = local_issuer_factory(algorithms=("ES256",), clock=lambda: 1_000_000.0, rfc9068=False)
    token = issuer.mint(
        expires_in=None, omit=["jti"], audience=["a", "b"], scope=["x", "y"], role="admin"
    )
    assert jwt.get_unverified_header(token)["typ"] == "JWT"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "exp" not in claims
    assert "jti" not in claims
    assert claims["iat"] == 1_000_000
    assert (claims["aud"], claims["scope"], claims["role"]) == (["a", "b"], ["x", "y"], "admin")

    bare = issuer.mint(
        include_kid=False,
        headers={"typ": None, "x-test": 1},
        issuer=None,
        audience=None,
        subject=None,
        expires_in=-60,
    )
    assert jwt.get_unverified_header(bare) == {"alg": "ES256", "x-test": 1}
    claims = jwt.decode(bare, options={"verify_signature": False})
    assert set(claims) == {"iat", "exp", "jti"}
    assert claims["exp"] == 1_000_000 - 60

    unsigned = issuer.mint(alg="none")
    assert unsigned.endswith(".")
    assert jwt.get_unverified_header(unsigned)["alg"] == "none"
    with pytest.raises(ValueError, match="no RS256 key"):
        issuer.mint(alg="RS256")
    with pytest.raises(KeyError, match="unknown kid"):
        issuer.mint(kid="nope")


def test_private_key_allows_signing_by_hand(http: httpx.Client, issuer: LocalIssuer) -> None:
    payload = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "hand-made"}
    token = jwt.encode(
        payload, issuer.private_key(issuer.kid()), algorithm="ES256", headers={"kid": issuer.kid()}
    )
    assert verify(http, issuer, token)["sub"] == "hand-made"


def test_port_is_unknown_before_the_first_start() -> None:
    issuer = LocalIssuer(algorithms=("ES256",))
    with pytest.raises(RuntimeError, match="start"):
        issuer.mint()
    assert issuer.mint(issuer="https://elsewhere.test")


def test_rotate_and_retire(http: httpx.Client, issuer: LocalIssuer) -> None:
    old = issuer.kid("ES256")
    old_token = issuer.mint()
    new = issuer.rotate("ES256")
    assert new != old
    assert issuer.kid() == new
    assert published_kids(http, issuer) == {old, new}
    assert verify(http, issuer, old_token)["sub"] == "test-client"
    assert jwt.get_unverified_header(issuer.mint())["kid"] == new

    issuer.retire(old)
    assert published_kids(http, issuer) == {new}
    newest = issuer.rotate(keep_old=False)
    assert published_kids(http, issuer) == {newest}
    assert jwt.get_unverified_header(issuer.mint(kid=old))["kid"] == old  # still signs
    with pytest.raises(KeyError):
        issuer.retire("nope")


# -- token endpoint -------------------------------------------------------------------------


def test_token_endpoint_with_client_secret_basic_form_encodes_credentials(
    http: httpx.Client, local_issuer_factory: IssuerFactory
) -> None:
    client_id, secret = "svc:reports", "p:ss%41word"
    issuer = local_issuer_factory(algorithms=("ES256",), clients={client_id: secret})
    encoded = (quote(client_id, safe=""), quote(secret, safe=""))
    data = {**CLIENT_CREDENTIALS, "scope": "read  write"}

    response = http.post(issuer.token_endpoint, data=data, auth=encoded)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert (answer["token_type"], answer["expires_in"], answer["scope"]) == (
        "Bearer",
        300,
        "read write",
    )
    claims = verify(http, issuer, answer["access_token"])
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["scope"] == "read write"
    (sent,) = [request for request in issuer.requests if request.method == "POST"]
    assert sent.headers["authorization"] == basic(*encoded)["Authorization"]
    assert sent.form == data

    # Without the form-encoding the ':' in the id and the '%41' in the secret are misread.
    assert http.post(issuer.token_endpoint, data=data, auth=(client_id, secret)).status_code == 401


def test_token_endpoint_with_client_secret_post_and_opaque_tokens(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    data = {**CLIENT_CREDENTIALS, "client_id": CLIENT[0], "client_secret": CLIENT[1]}
    response = http.post(issuer.token_endpoint, data={**data, "token_format": "opaque"})
    assert response.status_code == 200
    token = response.json()["access_token"]
    assert len(token) == 43
    assert "." not in token
    assert "scope" not in response.json()
    assert introspect(http, issuer, token)["active"] is True

    response = http.post(issuer.token_endpoint, data={**data, "resource": "https://other.test"})
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://other.test"


@pytest.mark.parametrize(
    ("data", "headers", "expected"),
    [
        (CLIENT_CREDENTIALS, basic("test-client", "wrong"), (401, "invalid_client")),
        (CLIENT_CREDENTIALS, basic("nobody", "test-secret"), (401, "invalid_client")),
        (CLIENT_CREDENTIALS, {}, (401, "invalid_client")),
        (CLIENT_CREDENTIALS, {"Authorization": "Basic !!!"}, (401, "invalid_client")),
        (CLIENT_CREDENTIALS, {"Authorization": "Basic bm8tY29sb24="}, (401, "invalid_client")),
        (
            {**CLIENT_CREDENTIALS, "client_secret": "test-secret"},
            basic(*CLIENT),
            (400, "invalid_request"),
        ),
        ({"grant_type": "password"}, basic(*CLIENT), (400, "unsupported_grant_type")),
        ({}, basic(*CLIENT), (400, "invalid_request")),
    ],
)
def test_token_endpoint_errors(
    http: httpx.Client,
    issuer: LocalIssuer,
    data: dict[str, str],
    headers: dict[str, str],
    expected: tuple[int, str],
) -> None:
    response = http.post(issuer.token_endpoint, data=data, headers=headers)
    assert (response.status_code, response.json()["error"]) == expected
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


def test_wrong_method_and_unknown_path(http: httpx.Client, issuer: LocalIssuer) -> None:
    response = http.get(issuer.token_endpoint)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    response = http.get(f"{issuer.issuer}/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


def test_malformed_requests_do_not_break_the_server(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    requests = {
        b"POST /token HTTP/1.1\r\nContent-Length: x\r\n\r\n": b"HTTP/1.0 400 ",
        b"BREW /pot HTTP/1.1\r\n\r\n": b"HTTP/1.0 501 ",
        b"\x00garbage\r\n\r\n": b"<!DOCTYPE HTML>",  # an HTTP/0.9 error page
    }
    for raw, answer in requests.items():
        with socket.create_connection(("127.0.0.1", issuer.port), timeout=5) as connection:
            connection.sendall(raw)
            assert connection.recv(64).startswith(answer)
    assert http.get(issuer.jwks_uri).status_code == 200


# -- introspection --------------------------------------------------------------------------


def test_introspection(http: httpx.Client, local_issuer_factory: IssuerFactory) -> None:
    now = [1_000_000.0]
    issuer = local_issuer_factory(algorithms=("ES256",), clock=lambda: now[0])
    opaque = issuer.mint_opaque(scope="read", username="alice")
    assert introspect(http, issuer, opaque) == {
        "active": True,
        "scope": "read",
        "client_id": "test-client",
        "sub": "test-client",
        "token_type": "Bearer",
        "iat": 1_000_000,
        "exp": 1_000_300,
        "iss": issuer.issuer,
        "username": "alice",
    }
    jwt_token = issuer.mint(scope="read")
    answer = introspect(http, issuer, jwt_token)
    assert answer["active"] is True
    assert (answer["scope"], answer["aud"], answer["iss"]) == (
        "read",
        issuer.audience,
        issuer.issuer,
    )
    assert introspect(http, issuer, "unknown")["active"] is False
    assert introspect(http, issuer, issuer.mint(issuer="https://evil.test")) == {"active": False}

    issuer.revoke(opaque)
    assert introspect(http, issuer, opaque) == {"active": False}
    short_lived = issuer.mint_opaque(expires_in=10)
    now[0] += 20
    assert introspect(http, issuer, short_lived) == {"active": False}
    assert introspect(http, issuer, issuer.mint_opaque(expires_in=None))["active"] is True
    issuer.retire(issuer.kid())
    assert introspect(http, issuer, issuer.mint()) == {"active": False}


def test_introspection_requires_client_authentication_and_a_token(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    url, token = issuer.introspection_endpoint, issuer.mint_opaque()
    unauthenticated = http.post(url, data={"token": token})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {
        "error": "invalid_client",
        "error_description": "unknown client",
    }
    posted = {"token": token, "token_type_hint": "access_token"}
    response = http.post(url, data={**posted, "client_id": CLIENT[0], "client_secret": CLIENT[1]})
    assert response.json()["active"] is True
    missing = http.post(url, data={"token_type_hint": "access_token"}, auth=CLIENT)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


def test_introspection_body_override(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.set_introspection_body(b'{"active": "yes"', status=200)
    response = http.post(issuer.introspection_endpoint, data={"token": "t"}, auth=CLIENT)
    assert response.content == b'{"active": "yes"'
    issuer.set_introspection_body(None)
    assert introspect(http, issuer, "t") == {"active": False}


# -- counting and faults --------------------------------------------------------------------


def test_counts_and_recorded_requests(
    http: httpx.Client, local_issuer_factory: IssuerFactory
) -> None:
    issuer = local_issuer_factory(algorithms=("ES256",), path="/t")
    http.get(issuer.jwks_uri)
    http.get(issuer.jwks_uri + "?x=1")
    http.get(issuer.oauth_metadata_url)
    http.post(issuer.token_endpoint, data=CLIENT_CREDENTIALS, auth=CLIENT)
    assert issuer.count("jwks") == issuer.count("/t/jwks") == 2
    assert issuer.count("oauth-authorization-server") == 1
    assert issuer.count("/.well-known/oauth-authorization-server/t") == 1
    assert issuer.count("openid-configuration") == 0
    assert issuer.count("token") == 1
    assert issuer.count() == 4
    assert [(r.method, r.path) for r in issuer.requests] == [
        ("GET", "/t/jwks"),
        ("GET", "/t/jwks"),
        ("GET", "/.well-known/oauth-authorization-server/t"),
        ("POST", "/t/token"),
    ]
    with pytest.raises(ValueError, match="unknown endpoint"):
        issuer.count("t/jwks")
    issuer.reset_counts()
    assert issuer.count() == 0
    assert issuer.requests == []


def test_go_down_with_errors_then_come_back(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.go_down(status=502)
    for response in (http.get(issuer.jwks_uri), http.post(issuer.token_endpoint, auth=CLIENT)):
        assert response.status_code == 502
        assert response.headers["content-type"] == "text/html"
    assert issuer.count("jwks") == 1
    issuer.come_back()
    assert http.get(issuer.jwks_uri).status_code == 200


def test_go_down_refusing_connections_keeps_the_port(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    url = issuer.jwks_uri
    issuer.go_down("refuse")
    with pytest.raises(httpx.ConnectError):
        http.get(url)
    issuer.come_back()
    assert issuer.jwks_uri == url
    assert http.get(url).status_code == 200


def test_restart_comes_back_on_the_same_port(http: httpx.Client) -> None:
    issuer = LocalIssuer(algorithms=("ES256",))
    with issuer:
        url = issuer.jwks_uri
        assert http.get(url).status_code == 200
        with pytest.raises(RuntimeError, match="already running"):
            issuer.start()
    with pytest.raises(httpx.ConnectError):
        http.get(url)
    with issuer:
        assert issuer.jwks_uri == url
        assert http.get(url).status_code == 200
    issuer.stop()  # idempotent


def test_fail_next(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.fail_next(2, status=502, body=b"bad gateway")
    for _ in range(2):
        response = http.get(issuer.jwks_uri)
        assert (response.status_code, response.content) == (502, b"bad gateway")
    assert http.get(issuer.jwks_uri).status_code == 200
    assert issuer.count("jwks") == 3


def test_set_delay(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.set_delay(0.1)
    started = time.monotonic()
    assert http.get(issuer.jwks_uri).status_code == 200
    assert time.monotonic() - started >= 0.1
    with pytest.raises(httpx.ReadTimeout):
        http.get(issuer.jwks_uri, timeout=0.02)
    issuer.set_delay(0)
    assert http.get(issuer.jwks_uri).status_code == 200


def test_set_jwks_body(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.set_jwks_body(b'{"keys": [')
    assert http.get(issuer.jwks_uri).content == b'{"keys": ['
    issuer.set_jwks_body(None)
    assert http.get(issuer.jwks_uri).json() == issuer.jwks()


# -- lifecycle and plugin -------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_async_context_manager() -> None:
    async with LocalIssuer(algorithms=("ES256",)) as issuer, httpx.AsyncClient() as client:
        response = await client.get(issuer.jwks_uri)
        assert response.json() == issuer.jwks()


def test_factory_starts_independent_issuers(
    http: httpx.Client, local_issuer_factory: IssuerFactory
) -> None:
    first = local_issuer_factory(algorithms=("ES256",))
    second = local_issuer_factory(algorithms=("EdDSA",), path="/second")
    assert first.port != second.port
    assert published_kids(http, first) == {first.kid()}
    assert published_kids(http, second) == {second.kid()}
