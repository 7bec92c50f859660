"""private_key_jwt (RFC 7523 §2.2) against LocalIssuer on 127.0.0.1, which verifies assertions.

First the test kit's own checks (so that the end-to-end tests below prove something), then the
resource server introspecting with its key, through the sync and the async entry point.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bearerguard import Introspection, ResourceServer, UpstreamUnavailableError
from bearerguard._assertion import ASSERTION_TYPE, client_assertion, new_jti
from bearerguard.testing import LocalIssuer

from ..conftest import FakeClock, Twin

CLIENT = "orders-api"
OKTA_AUD = "https://tenant.okta.test/oauth2/v1/introspect"  # an explicit aud (Okta's shape)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer(local_issuer: LocalIssuer, key: rsa.RSAPrivateKey) -> LocalIssuer:
    local_issuer.register_client_key(CLIENT, key.public_key(), "RS256")
    return local_issuer


def bearer(token: str) -> str:
    return "Bearer " + token


# -- LocalIssuer verifies what it is sent ---------------------------------------------------


def token_request(at: LocalIssuer, assertion: str, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **form,
    }
    return httpx.post(at.token_endpoint, data=data)


def signed(at: LocalIssuer, **claims: Any) -> str:
    values: dict[str, Any] = {
        "client_id": CLIENT,
        "audience": at.issuer,
        "alg": "RS256",
        "kid": None,
        "now": time.time(),  # LocalIssuer's default clock
        "jti": new_jti(),
    }
    return client_assertion(**(values | claims))


def test_local_issuer_token_endpoint_accepts_a_good_assertion_once(
    issuer: LocalIssuer, key: rsa.RSAPrivateKey
) -> None:
    for audience in (issuer.issuer, issuer.token_endpoint):  # both are this AS's names
        assertion = signed(issuer, key=key, audience=audience)
        response = token_request(issuer, assertion, client_id=CLIENT)
        assert response.status_code == 200, response.text
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["client_id"] == CLIENT
        replay = token_request(issuer, assertion)
        assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")


def test_local_issuer_can_require_one_assertion_audience(
    issuer: LocalIssuer, key: rsa.RSAPrivateKey, local_issuer_factory: Callable[..., LocalIssuer]
) -> None:
    # What lets the tests below fail if we send an `aud` the AS was not told to expect.
    issuer.client_assertion_audiences = [issuer.token_endpoint]
    refused = token_request(issuer, signed(issuer, key=key, audience=issuer.issuer))
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    accepted = token_request(issuer, signed(issuer, key=key, audience=issuer.token_endpoint))
    assert accepted.status_code == 200, accepted.text
    at = local_issuer_factory(client_assertion_audiences=OKTA_AUD)  # one string: that one value
    at.register_client_key(CLIENT, key.public_key())
    for audience, status in ((at.issuer, 401), (at.token_endpoint, 401), (OKTA_AUD, 200)):
        assert token_request(at, signed(at, key=key, audience=audience)).status_code == status


@pytest.mark.parametrize(
    ("claims", "form", "expected"),
    [
        ({"key": "other"}, {}, (401, "invalid_client")),
        ({"audience": "https://other-as.example"}, {}, (401, "invalid_client")),
        ({"now": time.time() - 120}, {}, (401, "invalid_client")),  # expired a minute ago
        ({"client_id": "test-client"}, {}, (401, "invalid_client")),  # no key registered
        ({}, {"client_id": "test-client"}, (401, "invalid_client")),  # not the assertion's
        ({}, {"client_secret": "test-secret"}, (400, "invalid_request")),  # two methods
        ({}, {"client_assertion_type": "urn:example:saml"}, (400, "invalid_request")),
    ],
    ids=["key", "aud", "exp", "iss", "client_id", "secret-too", "assertion-type"],
)
def test_local_issuer_refuses_bad_assertions(
    issuer: LocalIssuer,
    key: rsa.RSAPrivateKey,
    claims: dict[str, Any],
    form: dict[str, str],
    expected: tuple[int, str],
) -> None:
    if claims.get("key") == "other":
        claims = {"key": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
    response = token_request(issuer, signed(issuer, **({"key": key} | claims)), **form)
    assert (response.status_code, response.json()["error"]) == expected


# -- the resource server introspects with its key -------------------------------------------


def server_for(
    at: LocalIssuer, private_key: Any, clock: FakeClock | None = None, **kw: Any
) -> ResourceServer:
    introspection = Introspection(
        client_id=CLIENT,
        auth_method="private_key_jwt",
        private_key=private_key,
        **({"endpoint": at.introspection_endpoint} | kw),
    )
    times: dict[str, Any] = {} if clock is None else {"clock": clock.time, "timer": clock.monotonic}
    return ResourceServer(introspection=introspection, **times)


# (private_key_audience, what is configured, the aud the AS requires); "issuer" configured alone
# means a discovered endpoint.
AUDIENCE_CASES = [
    (None, "endpoint", "endpoint"),  # the default: the only name of the AS we have
    (None, "issuer", "issuer"),  # the default: the issuer identifier when configured
    (None, "both", "issuer"),
    ("endpoint", "endpoint", "endpoint"),
    ("endpoint", "issuer", "endpoint"),  # the URL discovery found and we POST to
    ("endpoint", "both", "endpoint"),
    ("issuer", "issuer", "issuer"),
    ("issuer", "both", "issuer"),
    (OKTA_AUD, "endpoint", OKTA_AUD),  # an explicit value, sent as given
    (OKTA_AUD, "issuer", OKTA_AUD),
]


@pytest.mark.parametrize(
    ("setting", "configured", "required"),
    AUDIENCE_CASES,
    ids=[f"{'url' if s == OKTA_AUD else s}-aud, {c} configured" for s, c, _ in AUDIENCE_CASES],
)
def test_introspection_with_private_key_jwt(
    issuer: LocalIssuer,
    key: rsa.RSAPrivateKey,
    twin: Twin,
    *,
    setting: str | None,
    configured: str,
    required: str,
) -> None:
    audience = {"issuer": issuer.issuer, "endpoint": issuer.introspection_endpoint}.get(
        required, required
    )
    issuer.client_assertion_audiences = [audience]  # any other aud is refused: 401, then 503
    wheres: dict[str, dict[str, Any]] = {
        "endpoint": {},
        "issuer": {"endpoint": None, "issuer": issuer.issuer},
        "both": {"issuer": issuer.issuer},
    }
    where = wheres[configured]
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    server = server_for(issuer, pem, private_key_audience=setting, **where)
    tokens = [issuer.mint_opaque(scope="orders.read", client_id="shop") for _ in range(3)]
    for token in tokens:  # a new assertion for each; LocalIssuer refuses a replayed jti
        access = twin.authenticate(server, bearer(token))
        assert (access.client_id, access.scopes) == ("shop", frozenset({"orders.read"}))
    sent = [r.form for r in issuer.requests if r.path.endswith("/introspect")]
    assert len(sent) == 3
    assert all(f["client_id"] == CLIENT and "client_secret" not in f for f in sent)
    claims = [
        jwt.decode(
            f["client_assertion"],
            key.public_key(),
            ["RS256"],
            audience=audience,
            options={"strict_aud": True},  # a string equal to it, not a list containing it
        )
        for f in sent
    ]
    assert len({c["jti"] for c in claims}) == 3


def test_an_as_that_wants_the_endpoint_needs_the_setting(
    issuer: LocalIssuer, key: rsa.RSAPrivateKey, twin: Twin
) -> None:
    # Okta's introspection takes only its own URL as `aud`, so our default (the issuer) fails:
    # 401 invalid_client there, a 503 here (our credentials, not the token, are at fault).
    issuer.client_assertion_audiences = [issuer.introspection_endpoint]
    token = issuer.mint_opaque(scope="orders.read")
    default = server_for(issuer, key, issuer=issuer.issuer)
    with pytest.raises(UpstreamUnavailableError):
        twin.authenticate(default, bearer(token))
    chosen = server_for(issuer, key, issuer=issuer.issuer, private_key_audience="endpoint")
    assert twin.authenticate(chosen, bearer(token)).scopes == frozenset({"orders.read"})


def test_wrong_key_is_503_and_an_error_log_without_key_or_assertion(
    issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    server = server_for(issuer, pem)
    token = issuer.mint_opaque()
    with caplog.at_level(logging.DEBUG, "bearerguard"), pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, bearer(token))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "client credentials" in errors[0] and "401" in errors[0]
    assert CLIENT in errors[0] and "private_key_jwt" in errors[0]
    (request,) = [r for r in issuer.requests if r.path.endswith("/introspect")]
    assertion = request.form["client_assertion"]
    secret_lines = pem.splitlines()[1:-1]  # the base64 body of the key
    for forbidden in (assertion, *assertion.split("."), token, *secret_lines):
        assert forbidden not in caplog.text


def test_assertion_times_follow_the_server_clock(
    local_issuer_factory: Callable[..., LocalIssuer], key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    # The LocalIssuer judges `exp` on the same fake clock: an assertion dated by another clock
    # would be expired (or from the future) there.
    at = local_issuer_factory(clock=clock.time)
    at.register_client_key(CLIENT, key.public_key())
    clock.advance(3600)
    server = server_for(at, key, clock)
    server.authenticate(bearer(at.mint_opaque()))
    (request,) = at.requests
    claims = jwt.decode(request.form["client_assertion"], options={"verify_signature": False})
    assert claims["iat"] == int(clock.time())
    server.close()
