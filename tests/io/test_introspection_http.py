"""Introspection (RFC 7662) against a real authorization server on 127.0.0.1 that counts calls.

Every scenario runs through the sync and the async entry point (`twin`), except the concurrency
tests, which run one per flavour by construction.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bearerguard import (
    AccessToken,
    Introspection,
    InvalidTokenError,
    Issuer,
    Reason,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard.testing import LocalIssuer

from ..conftest import FakeClock, Twin

Factory = Callable[..., LocalIssuer]


def introspection(at: LocalIssuer, /, **kw: Any) -> Introspection:
    options: dict[str, Any] = {
        "endpoint": at.introspection_endpoint,
        "client_id": "test-client",
        "client_secret": "test-secret",
    }
    return Introspection(**(options | kw))


def server_for(
    at: LocalIssuer, clock: FakeClock | None = None, /, *, issuers: Any = (), **kw: Any
) -> ResourceServer:
    """A server introspecting at `at`, with `kw` for `Introspection`."""
    times: dict[str, Any] = {} if clock is None else {"clock": clock.time, "timer": clock.monotonic}
    return ResourceServer(issuers, introspection=introspection(at, **kw), **times)


@pytest.fixture
def timed(local_issuer_factory: Factory, clock: FakeClock) -> LocalIssuer:
    """A LocalIssuer on the fake clock, so that its tokens' times agree with the server's."""
    return local_issuer_factory(clock=clock.time)


def bearer(token: str) -> str:
    return "Bearer " + token


def cyberark_like_token() -> str:
    # An opaque, non-JWT string in the b64token alphabet, with '+', '/' and '=' padding, much
    # longer than a random id: how CyberArk Identity's opaque access tokens look on the wire.
    return base64.b64encode(secrets.token_bytes(384)).decode("ascii")


def test_opaque_token_is_introspected_once_then_cached(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    token = local_issuer.mint_opaque(
        token=cyberark_like_token(), scope="orders.read orders.write", client_id="cyberark-app"
    )
    server = server_for(local_issuer)
    first = twin.authenticate(server, bearer(token))
    assert first.source == "introspection"
    assert (first.client_id, first.issuer) == ("cyberark-app", local_issuer.issuer)
    assert first.scopes == {"orders.read", "orders.write"}
    assert twin.authenticate(server, bearer(token)) is first  # cache hit
    assert local_issuer.count("introspect") == 1
    assert local_issuer.count() == 1  # nothing else: no discovery, no JWKS


def test_django_oauth_toolkit_answer(local_issuer: LocalIssuer, twin: Twin) -> None:
    exp = int(local_issuer._clock()) + 300
    answer = f'{{"active": true, "scope": "read write", "exp": {exp}, "client_id": "abc"}}'
    local_issuer.set_introspection_body(answer.encode())
    token = twin.authenticate(server_for(local_issuer), bearer(secrets.token_urlsafe(22)))
    assert (token.client_id, token.subject) == ("abc", None)
    assert token.scopes == {"read", "write"}
    assert token.expires_at == exp


def test_node_oidc_provider_answer(local_issuer: LocalIssuer, twin: Twin) -> None:
    token = local_issuer.mint_opaque(
        token=secrets.token_urlsafe(32),  # 43 characters, as node-oidc-provider issues
        scope="api:read",
        client_id="app",
        sub=None,
        aud="urn:api",
    )
    server = server_for(local_issuer, issuer=local_issuer.issuer, audience="urn:api")
    result = twin.authenticate(server, bearer(token))
    assert (result.client_id, result.subject) == ("app", None)
    assert result.scopes == {"api:read"}
    assert set(result.claims) == {
        *("active", "client_id", "exp", "iat", "iss", "aud", "scope", "token_type"),
    }


def test_client_secret_basic_is_form_encoded_then_base64(
    local_issuer_factory: Factory, twin: Twin
) -> None:
    client_id, secret = "svc:orders é", "p@ss word+/:%"
    issuer = local_issuer_factory(clients={client_id: secret})
    server = server_for(issuer, client_id=client_id, client_secret=secret)
    twin.authenticate(server, bearer(issuer.mint_opaque(client_id=client_id)))
    (request,) = issuer.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form == {"token": request.form["token"], "token_type_hint": "access_token"}
    scheme, _, credentials = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == "svc%3Aorders+%C3%A9:p%40ss+word%2B%2F%3A%25"


def test_client_secret_post_sends_credentials_in_the_body(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    server = server_for(local_issuer, auth_method="client_secret_post")
    token = local_issuer.mint_opaque()
    twin.authenticate(server, bearer(token))
    (request,) = local_issuer.requests
    assert "authorization" not in request.headers
    assert request.form == {
        "token": token,
        "token_type_hint": "access_token",
        "client_id": "test-client",
        "client_secret": "test-secret",
    }


def test_wrong_client_secret_is_503_and_an_error_log_without_secrets(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    server = server_for(local_issuer, client_secret="wrong-secret")
    token = local_issuer.mint_opaque()
    with caplog.at_level(logging.DEBUG, "bearerguard"), pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, bearer(token))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "client credentials" in errors[0] and "401" in errors[0]
    assert "wrong-secret" not in caplog.text and token not in caplog.text


def test_inactive_is_401_and_cached_for_negative_ttl(
    timed: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(timed, clock, negative_ttl=5)
    for _ in range(3):
        with pytest.raises(InvalidTokenError) as info:
            twin.authenticate(server, bearer("never-issued"))
        assert info.value.reason is Reason.INACTIVE
    assert timed.count("introspect") == 1
    clock.advance(5)
    with pytest.raises(InvalidTokenError):
        twin.authenticate(server, bearer("never-issued"))
    assert timed.count("introspect") == 2


def test_revocation_is_seen_after_cache_max_ttl_at_the_latest(
    timed: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(timed, clock, cache_max_ttl=30)
    token = timed.mint_opaque(expires_in=3600)
    twin.authenticate(server, bearer(token))
    timed.revoke(token)
    clock.advance(29)
    twin.authenticate(server, bearer(token))  # still cached: the price of not asking each time
    assert timed.count("introspect") == 1
    clock.advance(1)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(token))
    assert info.value.reason is Reason.INACTIVE
    assert timed.count("introspect") == 2


def test_cached_answer_never_outlives_exp(
    local_issuer_factory: Factory, twin: Twin, clock: FakeClock
) -> None:
    issuer = local_issuer_factory(clock=clock.time)
    server = server_for(issuer, clock, cache_max_ttl=300, leeway=0)
    token = issuer.mint_opaque(expires_in=60)
    first = twin.authenticate(server, bearer(token))
    clock.advance(59)
    assert twin.authenticate(server, bearer(token)) is first
    assert issuer.count("introspect") == 1
    clock.advance(1)
    with pytest.raises(InvalidTokenError):
        twin.authenticate(server, bearer(token))
    assert issuer.count("introspect") == 2  # asked again at exp, not served from the cache


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda i: i.set_introspection_body(b'{"active": "true"}'), id="active-str"),
        pytest.param(lambda i: i.set_introspection_body(b'{"scope": "a"}'), id="no-active"),
        pytest.param(lambda i: i.set_introspection_body(b"<html>login</html>"), id="html"),
        pytest.param(lambda i: i.set_introspection_body(b'{"active": true}', 500), id="500"),
        pytest.param(lambda i: i.fail_next(1, status=502), id="502-html"),
        pytest.param(lambda i: i.go_down("refuse"), id="refused"),
        pytest.param(lambda i: i.set_delay(1.0), id="timeout"),
    ],
)
def test_broken_or_unreachable_endpoint_is_503_and_not_cached(
    local_issuer: LocalIssuer, twin: Twin, fault: Callable[[LocalIssuer], None]
) -> None:
    server = ResourceServer(introspection=introspection(local_issuer), timeout=0.2)
    token = local_issuer.mint_opaque()
    fault(local_issuer)
    with pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, bearer(token))
    local_issuer.set_introspection_body(None)
    local_issuer.set_delay(0)
    local_issuer.come_back()
    assert twin.authenticate(server, bearer(token)).client_id == "test-client"


def test_no_stale_positive_answer_while_the_issuer_is_down(
    timed: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(timed, clock, cache_max_ttl=30)
    token = timed.mint_opaque()
    twin.authenticate(server, bearer(token))
    timed.go_down("error", status=503)
    clock.advance(30)
    with pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, bearer(token))


def test_50_threads_one_unseen_token_one_introspection(local_issuer: LocalIssuer) -> None:
    local_issuer.set_delay(0.2)  # keep the first call in flight while the others arrive
    token = local_issuer.mint_opaque(scope="s")
    barrier = threading.Barrier(50)

    def call(_: int) -> AccessToken:
        barrier.wait()
        return server.authenticate(bearer(token))

    with server_for(local_issuer) as server, ThreadPoolExecutor(50) as pool:
        results = list(pool.map(call, range(50)))
    assert all(r.scopes == {"s"} for r in results)
    assert local_issuer.count("introspect") == 1


def test_50_tasks_one_unseen_token_one_introspection(local_issuer: LocalIssuer) -> None:
    local_issuer.set_delay(0.2)
    token = local_issuer.mint_opaque(scope="s")

    async def main() -> list[AccessToken]:
        async with server_for(local_issuer) as server:
            return await asyncio.gather(*(server.aauthenticate(bearer(token)) for _ in range(50)))

    results = asyncio.run(main())
    assert all(r.scopes == {"s"} for r in results)
    assert local_issuer.count("introspect") == 1


def test_50_concurrent_refusals_one_introspection(local_issuer: LocalIssuer) -> None:
    local_issuer.set_delay(0.2)

    async def one(server: ResourceServer) -> Reason:
        try:
            await server.aauthenticate(bearer("unknown-token"))
        except InvalidTokenError as exc:
            return exc.reason
        raise AssertionError("accepted")

    async def main() -> list[Reason]:
        async with server_for(local_issuer) as server:
            return await asyncio.gather(*(one(server) for _ in range(50)))

    assert asyncio.run(main()) == [Reason.INACTIVE] * 50
    assert local_issuer.count("introspect") == 1


# -- mixed mode ---------------------------------------------------------------------------------


def test_jwt_of_configured_issuer_is_verified_locally(
    local_issuer_factory: Factory, twin: Twin
) -> None:
    jwts, opaque = local_issuer_factory(), local_issuer_factory()
    server = server_for(opaque, issuers=Issuer(issuer=jwts.issuer, audience=jwts.audience))
    assert twin.authenticate(server, bearer(jwts.mint(scope="a"))).source == "jwt"
    assert twin.authenticate(server, bearer(opaque.mint_opaque(scope="b"))).scopes == {"b"}
    dotted = opaque.mint_opaque(token="not.a.jwt", scope="c")  # three dots, but no JWT
    assert twin.authenticate(server, bearer(dotted)).source == "introspection"
    assert opaque.count("introspect") == 2
    assert jwts.count("introspect") == 0 and jwts.count("jwks") == 1


def test_jwt_of_unknown_issuer_is_refused_unless_introspect_foreign_jwts(
    local_issuer_factory: Factory, twin: Twin
) -> None:
    jwts, other = local_issuer_factory(), local_issuer_factory()
    issuer = Issuer(issuer=jwts.issuer, audience=jwts.audience)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server_for(other, issuers=issuer), bearer(other.mint(scope="x")))
    assert info.value.reason is Reason.UNKNOWN_ISSUER
    assert other.count() == 0  # a JWT is never introspected unless asked for
    server = server_for(other, issuers=issuer, introspect_foreign_jwts=True)
    token = twin.authenticate(server, bearer(other.mint(scope="x")))
    assert (token.source, token.issuer) == ("introspection", other.issuer)
    assert token.scopes == {"x"}
    assert other.count("introspect") == 1 and other.count("jwks") == 0


def test_jwt_refused_by_node_oidc_provider_introspection_is_401(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    local_issuer.set_introspection_body(
        b'{"error": "unsupported_token_type", "error_description": "JWTs are not supported"}',
        status=400,
    )
    server = server_for(local_issuer, introspect_foreign_jwts=True)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(local_issuer.mint()))
    assert info.value.reason is Reason.INACTIVE


def test_without_introspection_nothing_is_asked(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience))
    for token, reason in (
        (local_issuer.mint_opaque(), Reason.MALFORMED),
        (local_issuer.mint(issuer="https://other.test"), Reason.UNKNOWN_ISSUER),
    ):
        with pytest.raises(InvalidTokenError) as info:
            twin.authenticate(server, bearer(token))
        assert info.value.reason is reason
    assert local_issuer.count() == 0


def test_introspect_jwts_also_asks_about_local_jwts(
    timed: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    issuer = Issuer(issuer=timed.issuer, audience=timed.audience)
    server = server_for(timed, clock, issuers=issuer, introspect_jwts=True, cache_max_ttl=30)
    token = timed.mint(scope="a")
    result = twin.authenticate(server, bearer(token))
    assert result.source == "jwt"  # verified locally, with the Issuer's rules
    assert result.scopes == {"a"}
    assert twin.authenticate(server, bearer(token)).scopes == {"a"}
    assert timed.count("introspect") == 1  # and the AS answer is cached

    forged = timed.mint(audience="https://someone-else.test")
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(forged))
    assert info.value.reason is Reason.AUDIENCE
    assert timed.count("introspect") == 1  # refused locally first: the AS is not asked

    timed.revoke(token)
    clock.advance(30)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(token))
    assert info.value.reason is Reason.INACTIVE


def test_endpoint_from_discovery_without_any_issuer(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = ResourceServer(
        introspection=Introspection(
            issuer=local_issuer.issuer, client_id="test-client", client_secret="test-secret"
        )
    )
    for _ in range(2):
        twin.authenticate(server, bearer(local_issuer.mint_opaque()))
    assert local_issuer.count("openid-configuration") == 1
    assert local_issuer.count("introspect") == 2


def test_endpoint_from_the_metadata_the_jwt_issuer_discovered(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    server = ResourceServer(
        Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience),
        introspection=Introspection(
            issuer=local_issuer.issuer, client_id="test-client", client_secret="test-secret"
        ),
    )
    twin.authenticate(server, bearer(local_issuer.mint()))
    twin.authenticate(server, bearer(local_issuer.mint_opaque()))
    assert local_issuer.count("openid-configuration") == 1  # shared, not discovered twice
    assert local_issuer.count("introspect") == 1


def test_iss_and_aud_of_the_answer_are_checked(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = server_for(local_issuer, issuer=local_issuer.issuer, audience="urn:orders")
    assert twin.authenticate(server, bearer(local_issuer.mint_opaque(aud="urn:orders")))
    assert twin.authenticate(server, bearer(local_issuer.mint_opaque()))  # no aud: absent
    for extra, reason in (
        ({"aud": "urn:billing"}, Reason.AUDIENCE),
        ({"iss": "https://other.test"}, Reason.UNKNOWN_ISSUER),
        ({"sub": ["x"]}, Reason.CLAIM_TYPE),
    ):
        with pytest.raises(InvalidTokenError) as info:
            twin.authenticate(server, bearer(local_issuer.mint_opaque(**extra)))
        assert info.value.reason is reason


def test_introspect_jwts_with_an_as_that_will_not_is_503_not_401(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    # The AS declines JWTs (node-oidc-provider does): our verified JWT is not at fault.
    local_issuer.set_introspection_body(b'{"error": "unsupported_token_type"}', status=400)
    server = ResourceServer(
        Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience),
        introspection=Introspection(
            endpoint=local_issuer.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
            introspect_jwts=True,
        ),
    )
    with (
        caplog.at_level(logging.ERROR, logger="bearerguard"),
        pytest.raises(UpstreamUnavailableError),
    ):
        twin.authenticate(server, "Bearer " + local_issuer.mint())
    assert "introspect_jwts cannot work" in caplog.text
    # A foreign token the AS will not judge is still just inactive (RFC 7662 §2.2).
    opaque_only = ResourceServer(
        introspection=Introspection(
            endpoint=local_issuer.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
            introspect_foreign_jwts=True,
        )
    )
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(opaque_only, "Bearer " + local_issuer.mint())
    assert info.value.reason is Reason.INACTIVE


@pytest.mark.parametrize(
    "bad", ["https://[bad/introspect", "https://a\uff03b/introspect", "http://x]/introspect"]
)
def test_discovered_endpoint_that_is_no_url_is_503_not_an_exception(twin: Twin, bad: str) -> None:
    # The AS's metadata is upstream data: an endpoint in it that urlsplit cannot read is a
    # broken answer (503, nothing sent), never a ValueError out of the request (a 500).
    class Unreadable(LocalIssuer):
        def metadata(self) -> dict[str, Any]:
            return super().metadata() | {"introspection_endpoint": bad}

    with Unreadable() as issuer:
        server = ResourceServer(
            introspection=Introspection(
                issuer=issuer.issuer, client_id="test-client", client_secret="test-secret"
            )
        )
        with pytest.raises(UpstreamUnavailableError):
            twin.authenticate(server, bearer(issuer.mint_opaque()))
        assert issuer.count("openid-configuration") >= 1
        assert issuer.count("introspect") == 0
