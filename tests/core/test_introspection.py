"""RFC 7662 introspection, pure: the request, reading answers, cache deadlines, on a fake clock."""

from __future__ import annotations

import base64
import logging
from typing import Any, cast
from urllib.parse import unquote_plus

import pytest

from bearerguard import (
    AccessToken,
    ConfigurationError,
    Introspection,
    InvalidTokenError,
    Reason,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard import _introspecting as answers
from bearerguard._discovery import Metadata
from bearerguard._env import introspection_from_env
from bearerguard._events import Events
from bearerguard._flow import Fetch, Fetched, FetchFailed, Flow, to_outcome
from bearerguard._introspection import Introspector, introspection_request, token_key
from bearerguard._store import MemoryStore

from ..conftest import FakeClock
from ..helpers import FAILED, drive, fetched

ENDPOINT = "https://idp.test/oauth2/introspect"
ISSUER = "https://idp.test"
NOW = 1_700_000_000.0


def config(**kw: Any) -> Introspection:
    options: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "client_id": "orders-api",
        "client_secret": "s3cret",
        "leeway": 0,
    }
    return Introspection(**(options | kw))


def active(**members: Any) -> Fetched:
    return fetched({"active": True, "exp": NOW + 600, **members})


def introspect(
    intro: Introspector, token: str, *outcomes: Any, now: float = NOW
) -> tuple[Any, list[Fetch]]:
    """The flow alone: what the AS's answer means (it neither reads nor writes the cache)."""
    return drive(intro.flow(token, token_key(token), now), *outcomes)


def cached_introspect(
    intro: Introspector, token: str, *outcomes: Any, now: float = NOW
) -> tuple[AccessToken, list[Fetch]]:
    """As the server introspects: the cache, else the flow, its outcome then cached."""
    fetches: list[Fetch] = []

    def run(flow: Flow[AccessToken]) -> AccessToken:
        access, made = drive(flow, *outcomes)
        fetches.extend(made)
        return cast(AccessToken, access)

    access, _ = answers.introspect(
        intro, token, token_key(token), run=run, clock=lambda: now, wait=None, events=Events()
    )
    return access, fetches


# -- the request --------------------------------------------------------------------------------


def test_request_client_secret_basic_form_encodes_before_base64() -> None:
    # RFC 6749 §2.3.1 + Appendix B: id and secret are form-urlencoded, then joined by ':'.
    conf = config(client_id="svc:orders é", client_secret="p@ss word+/:%")
    fetch = introspection_request(conf, ENDPOINT, "tok-1", NOW)
    assert (fetch.url, fetch.method) == (ENDPOINT, "POST")
    assert fetch.form == (("token", "tok-1"), ("token_type_hint", "access_token"))
    ((name, value),) = fetch.headers
    assert name == "authorization" and value.startswith("Basic ")
    raw = base64.b64decode(value.removeprefix("Basic "), validate=True).decode("ascii")
    assert raw == "svc%3Aorders+%C3%A9:p%40ss+word%2B%2F%3A%25"
    user, _, password = raw.partition(":")
    assert (unquote_plus(user), unquote_plus(password)) == ("svc:orders é", "p@ss word+/:%")


def test_request_client_secret_post_puts_credentials_in_the_body() -> None:
    fetch = introspection_request(config(auth_method="client_secret_post"), ENDPOINT, "tok-1", NOW)
    assert fetch.headers == ()
    assert dict(fetch.form or ()) == {
        "token": "tok-1",
        "token_type_hint": "access_token",
        "client_id": "orders-api",
        "client_secret": "s3cret",
    }


def test_request_repr_and_config_repr_hide_secrets() -> None:
    conf = config(auth_method="client_secret_post")
    fetch = introspection_request(conf, ENDPOINT, "the-token", NOW)
    for text in (repr(fetch), repr(conf)):
        assert "s3cret" not in text and "the-token" not in text


def test_cache_key_is_a_hash_not_the_token() -> None:
    assert token_key("abc") == bytes.fromhex(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


# -- reading the answer -------------------------------------------------------------------------


def test_django_oauth_toolkit_minimal_answer() -> None:
    intro = Introspector(config())
    answer = {"active": True, "scope": "read write", "exp": NOW + 600, "client_id": "abc"}
    token, fetches = introspect(intro, "dot-token", fetched(answer))
    assert len(fetches) == 1
    assert token.source == "introspection"
    assert token.scopes == {"read", "write"}
    assert (token.client_id, token.subject, token.issuer) == ("abc", None, ENDPOINT)
    assert token.expires_at == NOW + 600
    assert dict(token.claims) == answer


def test_node_oidc_provider_answer() -> None:
    intro = Introspection(
        endpoint=ENDPOINT, issuer=ISSUER, audience="urn:api", client_id="rs", client_secret="x"
    )
    answer = {
        "active": True,
        "client_id": "app",
        "exp": NOW + 60,
        "iat": NOW,
        "iss": ISSUER,
        "aud": "urn:api",
        "scope": "api:read",
        "token_type": "Bearer",
    }
    token, _ = introspect(Introspector(intro), "x" * 43, fetched(answer))
    assert (token.issuer, token.client_id, token.scopes) == (ISSUER, "app", {"api:read"})


def test_scope_array_and_configured_scope_claims() -> None:
    token, _ = introspect(Introspector(config()), "t", active(scope=["a", "b"]))
    assert token.scopes == {"a", "b"}
    conf = config(scope_claims=("realm_access.roles",))
    token, _ = introspect(Introspector(conf), "t", active(realm_access={"roles": ["admin"]}))
    assert token.scopes == {"admin"}


def test_claims_are_read_only() -> None:
    token, _ = introspect(Introspector(config()), "t", active(aud=["x"], ext={"a": 1}))
    assert token.claims["aud"] == ("x",)
    with pytest.raises(TypeError):
        token.claims["ext"]["a"] = 2


def test_inactive_is_invalid_token() -> None:
    with pytest.raises(InvalidTokenError) as info:
        introspect(Introspector(config()), "t", fetched({"active": False}))
    assert info.value.reason is Reason.INACTIVE


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(fetched({"active": "true", "exp": NOW + 60}), id="active-string"),
        pytest.param(fetched({"active": 1}), id="active-number"),
        pytest.param(fetched({"scope": "read"}), id="active-missing"),
        pytest.param(Fetched(200, None), id="html-or-not-json"),
        pytest.param(Fetched(500, None), id="500"),
        pytest.param(fetched({"active": True}, status=201), id="201"),
        pytest.param(fetched({"error": "invalid_request"}, status=400), id="400-our-bug"),
        pytest.param(fetched({"error": "invalid_client"}, status=401), id="401-our-credentials"),
        pytest.param(FAILED, id="connection-refused"),
        pytest.param(FetchFailed("ReadTimeout"), id="timeout"),
    ],
)
def test_broken_answers_are_upstream_errors_and_not_cached(outcome: Any) -> None:
    intro = Introspector(config())
    with pytest.raises(UpstreamUnavailableError):
        introspect(intro, "t", outcome)
    token, fetches = introspect(intro, "t", active())  # nothing was cached: asked again
    assert len(fetches) == 1 and token.source == "introspection"


def test_unsupported_token_type_means_not_active() -> None:
    # node-oidc-provider answers JWTs this way; RFC 7662 §2.2: report them as inactive.
    refusal = fetched({"error": "unsupported_token_type"}, status=400)
    with pytest.raises(InvalidTokenError) as info:
        introspect(Introspector(config()), "t", refusal)
    assert info.value.reason is Reason.INACTIVE


def test_our_bad_credentials_are_an_error_log_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, "bearerguard"), pytest.raises(UpstreamUnavailableError):
        introspect(Introspector(config()), "the-token", fetched({"error": "invalid_client"}, 401))
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "orders-api" in record.getMessage() and "401" in record.getMessage()
    assert "s3cret" not in caplog.text and "the-token" not in caplog.text


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"exp": str(int(NOW + 60))}, Reason.CLAIM_TYPE),
        ({"exp": True}, Reason.CLAIM_TYPE),
        ({"iat": "now"}, Reason.CLAIM_TYPE),
        ({"nbf": None}, Reason.CLAIM_TYPE),
        ({"scope": 5}, Reason.CLAIM_TYPE),
        ({"scope": ["a", 1]}, Reason.CLAIM_TYPE),
        ({"client_id": 42}, Reason.CLAIM_TYPE),
        ({"sub": ["x"]}, Reason.CLAIM_TYPE),
        ({"iss": 1}, Reason.CLAIM_TYPE),
        ({"aud": 7}, Reason.CLAIM_TYPE),
        ({"exp": NOW}, Reason.EXPIRED),
        ({"exp": NOW - 1}, Reason.EXPIRED),
        ({"nbf": NOW + 1}, Reason.NOT_YET_VALID),
        ({"iat": NOW + 1}, Reason.ISSUED_IN_FUTURE),
        ({"iss": "https://other.test"}, Reason.UNKNOWN_ISSUER),
        ({"aud": "urn:other"}, Reason.AUDIENCE),
        ({"aud": ["urn:a", "urn:b"]}, Reason.AUDIENCE),
    ],
)
def test_active_answers_are_checked(members: dict[str, Any], reason: Reason) -> None:
    conf = config(issuer=ISSUER, audience="urn:api")
    with pytest.raises(InvalidTokenError) as info:
        introspect(Introspector(conf), "t", active(**members))
    assert info.value.reason is reason


def test_absent_optional_members_are_absent() -> None:
    conf = config(issuer=ISSUER, audience="urn:api")
    token, _ = introspect(Introspector(conf), "t", fetched({"active": True}))
    assert token.issuer == ISSUER and token.expires_at is None and token.scopes == frozenset()
    token, _ = introspect(Introspector(conf), "t", active(iss=ISSUER, aud=["urn:x", "urn:api"]))
    assert token.claims["aud"] == ("urn:x", "urn:api")


def test_times_are_checked_with_leeway() -> None:
    conf = config(leeway=30)
    token, _ = introspect(Introspector(conf), "t", active(exp=NOW - 29, nbf=NOW + 29, iat=NOW + 29))
    assert token.expires_at == NOW - 29
    with pytest.raises(InvalidTokenError):
        introspect(Introspector(conf), "t", active(exp=NOW - 30))


# -- the cache ----------------------------------------------------------------------------------


def test_positive_answer_lives_until_exp(clock: FakeClock) -> None:
    intro = Introspector(config(cache_max_ttl=300))
    key = token_key("t")
    first, _ = cached_introspect(intro, "t", active(exp=clock.now + 60), now=clock.now)
    clock.advance(59.9)
    assert intro.cached(key, clock.now) == first
    again, fetches = cached_introspect(intro, "t", now=clock.now)  # answered without a fetch
    assert again == first and fetches == []
    clock.advance(0.1)
    assert intro.cached(key, clock.now) is None  # never past exp, even within cache_max_ttl


def test_positive_answer_lives_at_most_cache_max_ttl(clock: FakeClock) -> None:
    intro = Introspector(config(cache_max_ttl=30))
    key = token_key("t")
    cached_introspect(intro, "t", active(exp=clock.now + 3600), now=clock.now)
    clock.advance(29)
    assert intro.cached(key, clock.now) is not None
    clock.advance(1)
    assert intro.cached(key, clock.now) is None


def test_answer_without_exp_lives_cache_max_ttl(clock: FakeClock) -> None:
    intro = Introspector(config(cache_max_ttl=30))
    cached_introspect(intro, "t", fetched({"active": True}), now=clock.now)
    clock.advance(29)
    assert intro.cached(token_key("t"), clock.now) is not None
    clock.advance(1)
    assert intro.cached(token_key("t"), clock.now) is None


def test_refusals_are_cached_for_negative_ttl(clock: FakeClock) -> None:
    intro = Introspector(config(negative_ttl=5))
    for token, answer in (("a", fetched({"active": False})), ("b", active(exp="soon"))):
        with pytest.raises(InvalidTokenError):
            cached_introspect(intro, token, answer, now=clock.now)
    clock.advance(4.9)
    for token, reason in (("a", Reason.INACTIVE), ("b", Reason.CLAIM_TYPE)):
        with pytest.raises(InvalidTokenError) as info:
            intro.cached(token_key(token), clock.now)
        assert info.value.reason is reason
    clock.advance(0.1)
    assert intro.cached(token_key("a"), clock.now) is None


def test_cache_size_is_bounded_and_zero_disables_it(clock: FakeClock) -> None:
    intro = Introspector(config(cache_size=10))
    for i in range(25):
        cached_introspect(intro, f"t{i}", active(), now=clock.now)
    assert len(cast(MemoryStore, intro._cache)) <= 10
    assert intro.cached(token_key("t24"), clock.now) is not None
    off = Introspector(config(cache_size=0))
    cached_introspect(off, "t", active(), now=clock.now)
    assert off.cached(token_key("t"), clock.now) is None


# -- the endpoint -------------------------------------------------------------------------------


def metadata_doc(**members: Any) -> dict[str, Any]:
    return {"issuer": ISSUER, "introspection_endpoint": ENDPOINT, **members}


def test_endpoint_is_discovered_once_from_the_issuer() -> None:
    intro = Introspector(config(endpoint=None, issuer=ISSUER))
    _, fetches = introspect(intro, "t1", fetched(metadata_doc()), active())
    assert [f.url for f in fetches] == [f"{ISSUER}/.well-known/openid-configuration", ENDPOINT]
    _, fetches = introspect(intro, "t2", active())
    assert [f.url for f in fetches] == [ENDPOINT]


def test_endpoint_from_metadata_an_issuer_already_discovered() -> None:
    known = Metadata(ISSUER, None, ENDPOINT, None, metadata_doc())
    intro = Introspector(config(endpoint=None, issuer=ISSUER), metadata=lambda: known)
    _, fetches = introspect(intro, "t", active())
    assert [f.url for f in fetches] == [ENDPOINT]


@pytest.mark.parametrize(
    "document",
    [
        metadata_doc(introspection_endpoint=None),
        metadata_doc(introspection_endpoint="http://idp.test/introspect"),  # our secret, in clear
        metadata_doc(issuer="https://evil.test"),
    ],
)
def test_unusable_discovered_endpoint_is_upstream_error(document: dict[str, Any]) -> None:
    intro = Introspector(config(endpoint=None, issuer=ISSUER))
    with pytest.raises(UpstreamUnavailableError):
        introspect(intro, "t", fetched(document), fetched(document))


def test_discovered_endpoint_is_forgotten_after_a_failure() -> None:
    intro = Introspector(config(endpoint=None, issuer=ISSUER))
    with pytest.raises(UpstreamUnavailableError):
        introspect(intro, "t", fetched(metadata_doc()), Fetched(404, None))
    _, fetches = introspect(intro, "t", fetched(metadata_doc()), active())
    assert len(fetches) == 2  # discovered again


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"endpoint": None},
        {"client_id": ""},
        {"client_secret": ""},
        {"auth_method": "private_key_jwt"},
        {"endpoint": "http://idp.test/introspect"},
        {"endpoint": None, "issuer": "http://idp.test"},
        {"audience": []},
        {"cache_max_ttl": -1},
        {"negative_ttl": float("nan")},
        {"cache_size": -1},
    ],
)
def test_config_refuses(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        config(**kw)


def test_config_allows_loopback_and_explicit_http() -> None:
    config(endpoint="http://127.0.0.1:8080/introspect")
    config(endpoint="http://idp.internal/introspect", allow_http=True)


def test_server_needs_an_issuer_or_introspection() -> None:
    with pytest.raises(ConfigurationError):
        ResourceServer([])
    assert ResourceServer(introspection=config()).issuers == ()


def test_introspection_from_env() -> None:
    env = {
        "BEARERGUARD_INTROSPECTION_ENDPOINT": ENDPOINT,
        "BEARERGUARD_INTROSPECTION_CLIENT_ID": "orders-api",
        "BEARERGUARD_INTROSPECTION_CLIENT_SECRET": "s3cret",
        "BEARERGUARD_INTROSPECTION_AUTH_METHOD": "client_secret_post",
        "BEARERGUARD_INTROSPECTION_AUDIENCE": "urn:a, urn:b",
        "BEARERGUARD_INTROSPECTION_CACHE_MAX_TTL": "120",
        "BEARERGUARD_INTROSPECTION_NEGATIVE_TTL": "2",
        "BEARERGUARD_INTROSPECTION_CACHE_SIZE": "50",
        "BEARERGUARD_INTROSPECTION_INTROSPECT_JWTS": "true",
        "BEARERGUARD_INTROSPECTION_SCOPE_CLAIMS": "scope roles",
        "BEARERGUARD_INTROSPECTION_LEEWAY": "5",
    }
    assert introspection_from_env(env) == Introspection(
        endpoint=ENDPOINT,
        client_id="orders-api",
        client_secret="s3cret",
        auth_method="client_secret_post",
        audience=("urn:a", "urn:b"),
        cache_max_ttl=120,
        negative_ttl=2,
        cache_size=50,
        introspect_jwts=True,
        scope_claims=("scope", "roles"),
        leeway=5,
    )
    assert introspection_from_env({}) is None
    server = ResourceServer.from_env(env)  # no BEARERGUARD_ISSUER needed with introspection
    assert server.issuers == ()


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"BEARERGUARD_INTROSPECTION_ENDPOINT": ENDPOINT}, "CLIENT_ID"),
        (
            {
                "BEARERGUARD_INTROSPECTION_CLIENT_ID": "a",
                "BEARERGUARD_INTROSPECTION_CLIENT_SECRET": "b",
            },
            "BEARERGUARD_INTROSPECTION_",
        ),
        ({"BEARERGUARD_INTROSPECTION_CACHE_SIZE": "many"}, "CACHE_SIZE"),
        ({"BEARERGUARD_ISSUERS": "introspection"}, "ISSUERS"),
    ],
)
def test_introspection_env_errors_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        ResourceServer.from_env(env)


def test_env_without_anything_still_needs_an_issuer() -> None:
    with pytest.raises(ConfigurationError, match="BEARERGUARD_ISSUER"):
        ResourceServer.from_env({})


def test_answer_with_duplicate_members_is_not_trusted() -> None:
    # The answer goes through the same strict JSON reader as every document: `active` given
    # twice could be read either way, so the answer is broken (503), not a decision.
    outcome = to_outcome(200, {}, b'{"active": false, "active": true}')
    with pytest.raises(UpstreamUnavailableError):
        introspect(Introspector(config()), "t", outcome)
