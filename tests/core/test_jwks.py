"""The JWKS cache state machine, driven by scripted outcomes on a fake clock (no HTTP)."""

from __future__ import annotations

import pytest

from bearerguard import InvalidTokenError, JWKSPolicy, Reason, UpstreamUnavailableError
from bearerguard._flow import Fetch, Fetched
from bearerguard._jwks import JWKSCache
from bearerguard._urls import metadata_urls

from ..helpers import FAILED, Signer, drive, fetched

URI = "https://issuer.test/jwks"
POLICY = JWKSPolicy(default_ttl=300, min_ttl=60, max_ttl=3600, min_refetch_interval=10,
                    stale_if_error=600)  # fmt: skip


@pytest.fixture
def cache() -> JWKSCache:
    return JWKSCache("https://issuer.test", jwks_uri=URI, policy=POLICY)


def test_jwks_first_use_fetches_then_serves_fresh_keys_without_fetching(
    cache: JWKSCache, signer: Signer
) -> None:
    assert cache.fresh("rs256-1", "RS256", 0) is None
    key, fetches = drive(cache.key_flow("rs256-1", "RS256", 0), fetched(signer.jwks()))
    assert fetches == [Fetch(URI)]
    assert key.kid == "rs256-1"
    assert cache.fresh("rs256-1", "RS256", 299) is key
    assert not cache.needs_fetch("rs256-1", "RS256", 299)
    assert cache.needs_fetch("rs256-1", "RS256", 300)  # the default TTL is over


@pytest.mark.parametrize(("max_age", "ttl"), [(None, 300), (120, 120), (5, 60), (10**6, 3600)])
def test_jwks_ttl_honours_max_age_within_bounds(
    cache: JWKSCache, signer: Signer, max_age: float | None, ttl: float
) -> None:
    drive(cache.key_flow("rs256-1", "RS256", 0), fetched(signer.jwks(), max_age=max_age))
    assert cache.keys is not None and cache.keys.ttl == ttl


def test_jwks_unknown_kid_refetch_is_rate_limited(cache: JWKSCache, signer: Signer) -> None:
    drive(cache.key_flow("rs256-1", "RS256", 0), fetched(signer.jwks()))

    assert not cache.needs_fetch("rotated", "RS256", 5)  # too soon after the last fetch
    with pytest.raises(InvalidTokenError) as info:
        drive(cache.key_flow("rotated", "RS256", 5))  # no fetch at all: nothing to answer
    assert info.value.reason is Reason.UNKNOWN_KID

    assert cache.needs_fetch("rotated", "RS256", 10)
    with pytest.raises(InvalidTokenError):
        drive(cache.key_flow("rotated", "RS256", 10), fetched(signer.jwks()))
    assert not cache.needs_fetch("another", "RS256", 19)  # the refetch started a new cool-down


def test_jwks_rotation_new_kid_found_after_one_refetch_old_kept_while_published(
    cache: JWKSCache, signer: Signer
) -> None:
    old = signer.jwks()
    drive(cache.key_flow("rs256-1", "RS256", 0), fetched(old))
    rotated = {"keys": [*old["keys"], {**old["keys"][1], "kid": "ps256-2"}]}
    key, fetches = drive(cache.key_flow("ps256-2", "PS256", 20), fetched(rotated))
    assert len(fetches) == 1 and key.kid == "ps256-2"
    assert cache.fresh("rs256-1", "RS256", 21) is not None  # still published, still served


def test_jwks_failed_refresh_serves_stale_keys_then_gives_up(
    cache: JWKSCache, signer: Signer
) -> None:
    drive(cache.key_flow("rs256-1", "RS256", 0), fetched(signer.jwks()))
    key, fetches = drive(cache.key_flow("rs256-1", "RS256", 400), FAILED)  # past the TTL
    assert fetches and key.kid == "rs256-1"  # served from the last good keys
    assert cache.last_error == f"{URI}: ConnectError"
    assert cache.stale("rs256-1", "RS256", 899) is not None
    assert cache.stale("rs256-1", "RS256", 900) is None  # TTL 300 + stale_if_error 600
    with pytest.raises(UpstreamUnavailableError) as info:
        drive(cache.key_flow("rs256-1", "RS256", 900), FAILED)
    assert info.value.retry_after == 10


@pytest.mark.parametrize("now", [0.0, 502.16, 1_000_000.3])
def test_jwks_retry_after_is_the_cool_down_whatever_the_clock_reads(
    cache: JWKSCache, now: float
) -> None:
    # (502.16 + 10) - 502.16 is 10.000000000000057 in floating point: rounded up, it was 11.
    with pytest.raises(UpstreamUnavailableError) as info:
        drive(cache.key_flow("rs256-1", "RS256", now), FAILED)
    assert info.value.retry_after == 10


def test_jwks_http_errors_and_bad_documents_are_failures(cache: JWKSCache) -> None:
    for outcome in (
        Fetched(500, {"error": "x"}),
        Fetched(200, None),
        Fetched(404, None),
        Fetched(200, {"keys": "nope"}),
    ):
        cache = JWKSCache("https://issuer.test", jwks_uri=URI, policy=POLICY)
        with pytest.raises(UpstreamUnavailableError):
            drive(cache.key_flow("k", "RS256", 0), outcome)
        assert cache.last_error


def test_jwks_unknown_kid_after_failed_fetch_is_unavailable_not_invalid(
    cache: JWKSCache, signer: Signer
) -> None:
    drive(cache.key_flow("rs256-1", "RS256", 0), fetched(signer.jwks()))
    with pytest.raises(UpstreamUnavailableError):
        drive(cache.key_flow("new-key", "RS256", 30), FAILED)  # may be a key we could not see
    drive(cache.key_flow("rs256-1", "RS256", 60), fetched(signer.jwks()))
    with pytest.raises(InvalidTokenError):
        drive(cache.key_flow("new-key", "RS256", 70), fetched(signer.jwks()))


def test_jwks_down_at_start_is_unavailable_and_retried_after_cool_down(
    cache: JWKSCache, signer: Signer
) -> None:
    with pytest.raises(UpstreamUnavailableError) as info:
        drive(cache.key_flow("rs256-1", "RS256", 0), FAILED)
    assert info.value.retry_after == 10
    with pytest.raises(UpstreamUnavailableError):
        drive(cache.key_flow("rs256-1", "RS256", 3))  # no fetch during the cool-down
    key, _ = drive(cache.key_flow("rs256-1", "RS256", 10), fetched(signer.jwks()))
    assert key.kid == "rs256-1"


def test_jwks_discovery_tries_oidc_then_rfc8414(signer: Signer) -> None:
    issuer = "https://idp.test/tenant"
    cache = JWKSCache(issuer, discovery_urls=metadata_urls(issuer), policy=POLICY)
    meta = {"issuer": issuer, "jwks_uri": "https://keys.idp.test/k"}
    key, fetches = drive(
        cache.key_flow("es256-1", "ES256", 0),
        Fetched(404, None),
        fetched(meta),
        fetched(signer.jwks()),
    )
    assert [f.url for f in fetches] == [
        "https://idp.test/tenant/.well-known/openid-configuration",
        "https://idp.test/.well-known/oauth-authorization-server/tenant",  # RFC 8414 §3.1
        "https://keys.idp.test/k",
    ]
    assert key.kid == "es256-1"
    assert cache.metadata is not None and cache.metadata.jwks_uri == "https://keys.idp.test/k"
    # Later refreshes go straight to the JWKS.
    _, fetches = drive(cache.key_flow("es256-1", "ES256", 400), fetched(signer.jwks()))
    assert [f.url for f in fetches] == ["https://keys.idp.test/k"]


def test_jwks_discovery_refuses_a_document_for_another_issuer(signer: Signer) -> None:
    issuer = "https://idp.test"
    cache = JWKSCache(issuer, discovery_urls=metadata_urls(issuer), policy=POLICY)
    evil = {"issuer": "https://evil.test", "jwks_uri": "https://evil.test/jwks"}
    with pytest.raises(UpstreamUnavailableError):
        drive(cache.key_flow("k", "RS256", 0), fetched(evil), fetched(evil))
    assert cache.last_error is not None and "different issuer" in cache.last_error
    assert cache.jwks_uri is None


def test_jwks_status_for_health_checks(cache: JWKSCache, signer: Signer) -> None:
    assert cache.status(0).usable is False
    drive(cache.key_flow("rs256-1", "RS256", 100), fetched(signer.jwks(), max_age=120))
    status = cache.status(130)
    assert status.fresh and status.usable and status.age == 30 and status.ttl == 120
    assert set(status.kids) == {"rs256-1", "ps256-1", "es256-1", "eddsa-1"}
    assert status.last_error is None
    assert cache.status(300).fresh is False


def test_jwks_without_usable_keys_is_a_failed_fetch_that_keeps_the_old_keys(
    cache: JWKSCache, signer: Signer
) -> None:
    drive(cache.key_flow("rs256-1", "RS256", 0), fetched(signer.jwks()))
    key, _ = drive(cache.key_flow("rs256-1", "RS256", 400), fetched({"keys": [{"kty": "oct"}]}))
    assert key.kid == "rs256-1"  # still served from the last good keys
    assert cache.last_error is not None and "no usable" in cache.last_error


@pytest.mark.parametrize(
    ("jwks_uri", "ok"),
    [
        ("https://keys.idp.test/k", True),
        (
            "http://keys.idp.test/k",
            False,
        ),  # keys over plain http: anyone on the path could swap them
        ("http://127.0.0.1:9/k", True),
        ("file:///etc/keys", False),
    ],
)
def test_jwks_discovered_uri_must_be_https(signer: Signer, jwks_uri: str, ok: bool) -> None:
    issuer = "https://idp.test"
    cache = JWKSCache(issuer, discovery_urls=metadata_urls(issuer), policy=POLICY)
    meta = {"issuer": issuer, "jwks_uri": jwks_uri}
    if ok:
        key, _ = drive(cache.key_flow("rs256-1", "RS256", 0), fetched(meta), fetched(signer.jwks()))
        assert key.kid == "rs256-1"
        return
    with pytest.raises(UpstreamUnavailableError):
        drive(cache.key_flow("rs256-1", "RS256", 0), fetched(meta), fetched(meta))
    assert cache.last_error is not None and "jwks_uri" in cache.last_error


def test_jwks_discovered_plain_http_allowed_when_configured(signer: Signer) -> None:
    issuer = "https://idp.test"
    cache = JWKSCache(issuer, discovery_urls=metadata_urls(issuer), policy=POLICY, allow_http=True)
    meta = {"issuer": issuer, "jwks_uri": "http://keys.idp.test/k"}
    key, _ = drive(cache.key_flow("rs256-1", "RS256", 0), fetched(meta), fetched(signer.jwks()))
    assert key.kid == "rs256-1"


def test_jwks_cool_down_counts_from_the_end_of_an_attempt(cache: JWKSCache, signer: Signer) -> None:
    # An attempt that took 8 s (a hanging issuer, two requests) is followed by a whole
    # cool-down: the issuer is not asked again 2 s after it finally answered.
    times = iter([0.0, 8.0])
    drive(cache.refresh_flow(lambda: next(times)), FAILED)
    assert not cache.may_fetch(10) and not cache.needs_fetch("rs256-1", "RS256", 17.9)
    assert cache.needs_fetch("rs256-1", "RS256", 18)
    with pytest.raises(UpstreamUnavailableError) as info:
        cache.select("rs256-1", "RS256", 10)
    assert info.value.retry_after == 8  # the time until the next fetch
    times = iter([20.0, 25.0])
    drive(cache.refresh_flow(lambda: next(times)), fetched(signer.jwks()))
    assert cache.keys is not None and cache.keys.fetched_at == 20  # the age counts from the start


def test_jwks_reselect_finds_a_key_replaced_under_its_kid(cache: JWKSCache, signer: Signer) -> None:
    old = signer.jwks()
    key, _ = drive(cache.key_flow("rs256-1", "RS256", 0), fetched(old))
    assert cache.reselect("rs256-1", "RS256", key, 1) is None  # nothing new to try: refuse

    drive(cache.refresh_flow(lambda: 20), fetched(old))  # the same document again
    assert cache.reselect("rs256-1", "RS256", key, 21) is None  # unchanged keys are kept as is

    fresh = Signer.generate(("RS256",)).jwks()["keys"][0]
    replaced = {"keys": [fresh if k["kid"] == "rs256-1" else k for k in old["keys"]]}
    drive(cache.refresh_flow(lambda: 40), fetched(replaced))
    new = cache.reselect("rs256-1", "RS256", key, 41)
    assert new is not None and new is not key and new.kid == "rs256-1"
    assert new.jwk["n"] == fresh["n"]


def test_jwks_reselect_after_a_failed_refetch_is_unavailable(
    cache: JWKSCache, signer: Signer
) -> None:
    key, _ = drive(cache.key_flow("rs256-1", "RS256", 0), fetched(signer.jwks()))
    drive(cache.refresh_flow(lambda: 20), FAILED)
    with pytest.raises(UpstreamUnavailableError):  # maybe replaced where we could not see it
        cache.reselect("rs256-1", "RS256", key, 21)


def test_jwks_reselect_of_a_withdrawn_kid_is_unknown_kid(cache: JWKSCache, signer: Signer) -> None:
    key, _ = drive(cache.key_flow("rs256-1", "RS256", 0), fetched(signer.jwks()))
    rest = {"keys": [k for k in signer.jwks()["keys"] if k["kid"] != "rs256-1"]}
    drive(cache.refresh_flow(lambda: 20), fetched(rest))
    with pytest.raises(InvalidTokenError) as info:
        cache.reselect("rs256-1", "RS256", key, 21)
    assert info.value.reason is Reason.UNKNOWN_KID
