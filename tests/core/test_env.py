from __future__ import annotations

import re
from pathlib import Path

import pytest

from bearerguard import ConfigurationError, Issuer, ResourceServer
from bearerguard._env import ISSUER_VARIABLES, POLICY_VARIABLES, SERVER_VARIABLES

README = Path(__file__).parents[2] / "README.md"
BASE = {"BEARERGUARD_ISSUER": "https://idp.test/t", "BEARERGUARD_AUDIENCE": "api://orders"}


def test_env_minimal_issuer() -> None:
    server = ResourceServer.from_env(BASE)
    (issuer,) = server.issuers
    assert issuer == Issuer(issuer="https://idp.test/t", audience="api://orders")


def test_env_every_variable_is_read() -> None:
    environ = BASE | {
        "BEARERGUARD_AUDIENCE": "api://orders, 0b0c-client-id",
        "BEARERGUARD_ALGORITHMS": "RS256 ES256 HS256",
        "BEARERGUARD_JWKS_URI": "https://idp.test/keys",
        "BEARERGUARD_SHARED_SECRET": "s" * 32,
        "BEARERGUARD_LEEWAY": "5",
        "BEARERGUARD_REQUIRED_CLAIMS": "exp,sub",
        "BEARERGUARD_RFC9068": "true",
        "BEARERGUARD_MAX_TOKEN_AGE": "3600",
        "BEARERGUARD_SCOPE_CLAIMS": "roles,scp",
        "BEARERGUARD_ALLOW_HTTP": "no",
        "BEARERGUARD_JWKS_TTL": "120",
        "BEARERGUARD_JWKS_MIN_TTL": "30",
        "BEARERGUARD_JWKS_MAX_TTL": "600",
        "BEARERGUARD_JWKS_MIN_REFETCH_INTERVAL": "2",
        "BEARERGUARD_JWKS_STALE_IF_ERROR": "0",
        "BEARERGUARD_MAX_TOKEN_BYTES": "4096",
        "BEARERGUARD_TOKEN_CACHE_SIZE": "0",
        "BEARERGUARD_HTTP_TIMEOUT": "1.5",
    }
    server = ResourceServer.from_env(environ)
    (issuer,) = server.issuers
    assert issuer.audience == ("api://orders", "0b0c-client-id")
    assert issuer.algorithms == ("RS256", "ES256", "HS256")
    assert issuer.secret_bytes == b"s" * 32
    assert (issuer.leeway, issuer.max_token_age, issuer.rfc9068) == (5.0, 3600.0, True)
    assert issuer.required_claims == ("exp", "sub")
    assert issuer.scope_claims == ("roles", "scp")
    policy = issuer.jwks_policy
    assert (policy.default_ttl, policy.min_ttl, policy.max_ttl) == (120, 30, 600)
    assert (policy.min_refetch_interval, policy.stale_if_error) == (2, 0)
    assert server.max_token_bytes == 4096
    # The table in README.md documents exactly the variables the code reads.
    documented = set(re.findall(r"`BEARERGUARD_([A-Z0-9_]+)`", README.read_text()))
    read = {*ISSUER_VARIABLES, *POLICY_VARIABLES, *SERVER_VARIABLES}
    assert read <= documented
    assert {k.removeprefix("BEARERGUARD_") for k in environ} == read - {"DISCOVERY_URL"}


def test_env_several_issuers() -> None:
    environ = {
        "BEARERGUARD_ISSUERS": "prod, demo",
        "BEARERGUARD_PROD_ISSUER": "https://login.microsoftonline.com/t1/v2.0",
        "BEARERGUARD_PROD_AUDIENCE": "api://orders",
        "BEARERGUARD_DEMO_ISSUER": "https://login.microsoftonline.com/t2/v2.0",
        "BEARERGUARD_DEMO_AUDIENCE": "api://orders-demo",
        "BEARERGUARD_DEMO_SCOPE_CLAIMS": "roles",
    }
    prod, demo = ResourceServer.from_env(environ).issuers
    assert prod.issuer.endswith("t1/v2.0") and demo.issuer.endswith("t2/v2.0")
    assert demo.scope_claims == ("roles",) and prod.scope_claims == ("scope", "scp")


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"BEARERGUARD_ISSUER": ""}, "BEARERGUARD_ISSUER"),
        ({"BEARERGUARD_AUDIENCE": " "}, "BEARERGUARD_AUDIENCE"),
        ({"BEARERGUARD_LEEWAY": "soon"}, "BEARERGUARD_LEEWAY"),
        ({"BEARERGUARD_LEEWAY": "-1"}, "BEARERGUARD_LEEWAY"),
        ({"BEARERGUARD_LEEWAY": "nan"}, "BEARERGUARD_LEEWAY"),
        ({"BEARERGUARD_RFC9068": "maybe"}, "BEARERGUARD_RFC9068"),
        ({"BEARERGUARD_ALGORITHMS": "RS256 none"}, "BEARERGUARD_ALGORITHMS"),
        ({"BEARERGUARD_ALGORITHMS": "HS256"}, "BEARERGUARD_SHARED_SECRET"),
        (
            {"BEARERGUARD_ALGORITHMS": "HS256", "BEARERGUARD_SHARED_SECRET": "short"},
            "BEARERGUARD_SHARED_SECRET",
        ),
        ({"BEARERGUARD_JWKS_URI": "http://idp.test/keys"}, "BEARERGUARD_JWKS_URI"),
        ({"BEARERGUARD_ISSUER": "http://idp.test"}, "BEARERGUARD_ISSUER"),
        ({"BEARERGUARD_DISCOVERY_URL": "ftp://idp.test/m"}, "BEARERGUARD_DISCOVERY_URL"),
        ({"BEARERGUARD_JWKS_MIN_TTL": "900"}, "BEARERGUARD_JWKS_MIN_TTL"),
        ({"BEARERGUARD_MAX_TOKEN_BYTES": "-5"}, "BEARERGUARD_MAX_TOKEN_BYTES"),
        ({"BEARERGUARD_TOKEN_CACHE_SIZE": "many"}, "BEARERGUARD_TOKEN_CACHE_SIZE"),
        ({"BEARERGUARD_ISSUERS": "prod"}, "BEARERGUARD_PROD_ISSUER"),
        ({"BEARERGUARD_ISSUERS": "pr-od"}, "BEARERGUARD_ISSUERS"),
    ],
)
def test_env_bad_value_names_the_variable(change: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(variable)):
        ResourceServer.from_env(BASE | change)


def test_env_secrets_are_not_echoed_in_errors() -> None:
    environ = BASE | {"BEARERGUARD_ALGORITHMS": "HS512", "BEARERGUARD_SHARED_SECRET": "hunter2" * 5}
    with pytest.raises(ConfigurationError) as info:
        ResourceServer.from_env(environ)
    assert "hunter2" not in str(info.value)


def test_env_keyword_arguments_override() -> None:
    server = ResourceServer.from_env(
        BASE | {"BEARERGUARD_MAX_TOKEN_BYTES": "100"}, max_token_bytes=7
    )
    assert server.max_token_bytes == 7


INTROSPECTION = {
    "BEARERGUARD_INTROSPECTION_ENDPOINT": "https://idp.test/introspect",
    "BEARERGUARD_INTROSPECTION_CLIENT_ID": "orders-api",
    "BEARERGUARD_INTROSPECTION_CLIENT_SECRET": "s3cret",
}


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"BEARERGUARD_INTROSPECTION_CACHE_SIZE": "-1"}, "BEARERGUARD_INTROSPECTION_CACHE_SIZE"),
        ({"BEARERGUARD_INTROSPECTION_ENDPOINT": "http://idp.test/i"}, "ENDPOINT"),
        ({"BEARERGUARD_INTROSPECTION_AUDIENCE": " , "}, "BEARERGUARD_INTROSPECTION_AUDIENCE"),
        ({"BEARERGUARD_INTROSPECTION_LEEWAY": "-3"}, "BEARERGUARD_INTROSPECTION_LEEWAY"),
        ({"BEARERGUARD_INTROSPECTION_AUTH_METHOD": "magic"}, "AUTH_METHOD"),
    ],
)
def test_env_bad_introspection_value_names_the_variable(
    change: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ResourceServer.from_env(INTROSPECTION | change)
    message = str(info.value)
    assert f"BEARERGUARD_INTROSPECTION_{variable.removeprefix('BEARERGUARD_INTROSPECTION_')}:" in (
        message
    )
    assert "_*" not in message
    assert "s3cret" not in message
