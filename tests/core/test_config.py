from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from bearerguard import ASYMMETRIC_ALGORITHMS, ConfigurationError, Issuer, ResourceServer

ISS = "https://idp.test"


def issuer(**kw: Any) -> Issuer:
    return Issuer(**({"issuer": ISS, "audience": "api"} | kw))


def test_issuer_defaults_are_safe() -> None:
    config = issuer()
    assert config.algorithms == ASYMMETRIC_ALGORITHMS
    assert not any(alg.startswith("HS") for alg in config.algorithms)
    assert config.required_claims == ("exp",)
    assert config.claims_policy().required == {"iss", "aud", "exp"}
    assert config.discovery_urls == (
        "https://idp.test/.well-known/openid-configuration",
        "https://idp.test/.well-known/oauth-authorization-server",
    )


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"algorithms": ["none"]}, "algorithms"),
        ({"algorithms": []}, "algorithms"),
        ({"algorithms": ["HS256"]}, "shared_secret"),  # HS* only with an explicit secret
        ({"algorithms": ["HS256"], "shared_secret": b"x" * 31}, "shared_secret"),
        ({"algorithms": ["HS256", "HS512"], "shared_secret": "x" * 32}, "shared_secret"),
        ({"shared_secret": "x" * 64}, "algorithms"),  # a secret nobody can use
        ({"audience": []}, "audience"),
        ({"audience": [""]}, "audience"),
        ({"leeway": -1}, "leeway"),
        ({"max_token_age": float("nan")}, "max_token_age"),
        ({"scope_claims": [""]}, "scope_claims"),
        ({"jwks_uri": "http://idp.test/keys"}, "jwks_uri"),  # keys over plain http
        ({"issuer": "http://idp.test"}, "issuer"),  # discovery over plain http
        ({"jwks_uri": "https://[::1/keys"}, "jwks_uri"),  # not a URL: a ValueError before
        ({"discovery_url": "https://idp.test:x/"}, "discovery_url"),
        ({"issuer": ""}, "issuer"),
    ],
)
def test_issuer_refuses_unsafe_or_broken_settings(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        issuer(**kw)
    assert info.value.field == field


def test_issuer_plain_http_only_for_loopback_or_when_allowed() -> None:
    issuer(issuer="http://127.0.0.1:8080")
    issuer(issuer="http://localhost:8080/realms/x")
    issuer(issuer="http://[::1]:8080")
    issuer(issuer="http://jamf.internal", allow_http=True)
    # A plain-http issuer *name* is fine when the keys come over https (Jamf's iss).
    issuer(issuer="http://jamf.internal", jwks_uri="https://jamf.internal/keys")


def test_issuer_hs_only_needs_no_keys_url() -> None:
    config = issuer(issuer="http://tenant.test/x", algorithms=["HS256"], shared_secret="k" * 32)
    assert not config.uses_jwks and config.discovery_urls == ()


def test_issuer_durations_accept_timedelta() -> None:
    config = issuer(leeway=timedelta(seconds=5), max_token_age=timedelta(hours=1))
    assert (config.leeway, config.max_token_age) == (5.0, 3600.0)


def test_issuer_repr_hides_the_secret() -> None:
    assert "topsecret" not in repr(issuer(algorithms=["HS256"], shared_secret="topsecret" * 4))


def test_issuer_without_audience_check_is_explicit_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="bearerguard"):
        config = issuer(audience=None)
    assert "aud claim is not checked" in caplog.text
    assert config.claims_policy().audiences is None


def test_server_refuses_duplicate_or_no_issuers() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        ResourceServer([issuer(), issuer()])
    with pytest.raises(ConfigurationError, match="at least one"):
        ResourceServer([])
    with pytest.raises(ConfigurationError):
        ResourceServer(issuer(), max_token_bytes=0)


def test_server_construction_does_no_io() -> None:
    # An unroutable discovery URL: construction must not try it (lazy first fetch).
    server = ResourceServer(issuer(issuer="https://idp.invalid"))
    (status,) = server.status()
    assert status.last_attempt_age is None and not status.usable


def test_the_configuration_allows_the_algorithms_keys_are_imported_for() -> None:
    from bearerguard import _config, _keys

    assert _config.SUPPORTED_ALGORITHMS == _keys.SUPPORTED_ALGORITHMS
