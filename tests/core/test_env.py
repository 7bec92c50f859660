from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearerguard import ConfigurationError, Introspection, Issuer, ResourceServer, RoleResolver
from bearerguard._env import (
    INTROSPECTION_VARIABLES,
    ISSUER_VARIABLES,
    POLICY_VARIABLES,
    SERVER_VARIABLES,
    check_names,
)

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


# -- unknown names, stray unprefixed variables, keyword arguments (issue 14) -------------------

KNOWN = {
    "BEARERGUARD_ISSUERS",
    "BEARERGUARD_SKIP_INTEROP",  # read by the test suite (tox passes BEARERGUARD_*), not config
    *(f"BEARERGUARD_{s}" for s in (*ISSUER_VARIABLES, *POLICY_VARIABLES, *SERVER_VARIABLES)),
    *(f"BEARERGUARD_INTROSPECTION_{s}" for s in INTROSPECTION_VARIABLES),
}


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("BEARERGUARD_ALGORITHM", "BEARERGUARD_ALGORITHMS"),
        ("BEARERGUARD_LEEWAY_SECONDS", "BEARERGUARD_LEEWAY"),
        ("BEARERGUARD_AUDIENCES", "BEARERGUARD_AUDIENCE"),
        ("BEARERGUARD_INTROSPECTION_CLIENTID", "BEARERGUARD_INTROSPECTION_CLIENT_ID"),
        ("BEARERGUARD_JWKS_STALE_IF_ERRORS", "BEARERGUARD_JWKS_STALE_IF_ERROR"),
    ],
)
def test_env_unknown_variable_is_reported_with_the_closest_name(
    typo: str, meant: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bearerguard"):
        ResourceServer.from_env(BASE | {typo: "hunter2-value"})
    (record,) = [r for r in caplog.records if "unknown" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert f"{typo} (did you mean {meant}?)" in record.getMessage()
    assert "hunter2" not in caplog.text
    with pytest.raises(ConfigurationError, match=re.escape(f"{typo} (did you mean {meant}?)")):
        ResourceServer.from_env(BASE | {typo: "hunter2-value"}, strict=True)


def test_env_strict_names_every_unknown_variable_at_once() -> None:
    environ = BASE | {"BEARERGUARD_ALGORITHM": "RS256", "BEARERGUARD_QQQQQQQQ": "1"}
    with pytest.raises(ConfigurationError) as info:
        ResourceServer.from_env(environ, strict=True)
    message = str(info.value)
    assert "BEARERGUARD_ALGORITHM (did you mean BEARERGUARD_ALGORITHMS?)" in message
    assert "BEARERGUARD_QQQQQQQQ" in message


@given(
    suffix=st.one_of(
        st.sampled_from(sorted(k.removeprefix("BEARERGUARD_") for k in KNOWN)),
        st.from_regex(r"[A-Z0-9_]{1,30}", fullmatch=True),
        st.sampled_from(sorted(KNOWN)).map(lambda k: k.removeprefix("BEARERGUARD_") + "S"),
    ),
    several=st.booleans(),
)
def test_env_a_name_is_reported_exactly_when_nothing_reads_it(suffix: str, several: bool) -> None:
    name = "BEARERGUARD_" + suffix
    environ = dict(BASE)
    known = set(KNOWN)
    if several:  # BEARERGUARD_ISSUERS=prod: BEARERGUARD_PROD_* is read, unprefixed issuer not
        environ = {
            "BEARERGUARD_ISSUERS": "prod",
            "BEARERGUARD_PROD_ISSUER": BASE["BEARERGUARD_ISSUER"],
            "BEARERGUARD_PROD_AUDIENCE": "api://orders",
        }
        known |= {f"BEARERGUARD_PROD_{s}" for s in (*ISSUER_VARIABLES, *POLICY_VARIABLES)}
    environ.setdefault(name, "")  # an empty value: a typo is a typo whatever its value
    if name in known:
        check_names(environ, strict=True)
    else:
        with pytest.raises(ConfigurationError, match=re.escape(name)):
            check_names(environ, strict=True)


def test_env_unrelated_and_project_variables_are_not_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = BASE | {"PATH": "/bin", "BEARERGUARD_SKIP_INTEROP": "1", "bearerguard_x": "1"}
    with caplog.at_level(logging.WARNING, logger="bearerguard"):
        ResourceServer.from_env(environ, strict=True)
    assert "unknown" not in caplog.text


@pytest.mark.parametrize("variable", ["BEARERGUARD_ISSUER", "BEARERGUARD_LEEWAY"])
def test_env_unprefixed_issuer_variable_beside_issuers_is_an_error(variable: str) -> None:
    environ = {
        "BEARERGUARD_ISSUERS": "prod",
        "BEARERGUARD_PROD_ISSUER": "https://idp.test/prod",
        "BEARERGUARD_PROD_AUDIENCE": "api://orders",
        variable: "https://idp.test/ignored" if variable.endswith("ISSUER") else "5",
    }
    suffix = variable.removeprefix("BEARERGUARD_")
    expected = f"{variable} is not read when BEARERGUARD_ISSUERS is set"
    with pytest.raises(ConfigurationError, match=re.escape(expected)) as info:
        ResourceServer.from_env(environ)
    assert f"BEARERGUARD_<NAME>_{suffix}" in str(info.value)


def test_env_keyword_issuer_fields_override_the_variables(caplog: pytest.LogCaptureFixture) -> None:
    resolver = RoleResolver(lambda role_id: ["orders.read"])
    server = ResourceServer.from_env(
        BASE | {"BEARERGUARD_LEEWAY": "5"}, audience=["api://other"], leeway=1, roles=resolver
    )
    (issuer,) = server.issuers
    assert (issuer.audience, issuer.leeway, issuer.roles) == (("api://other",), 1.0, resolver)
    assert issuer.issuer == BASE["BEARERGUARD_ISSUER"]
    # A required variable may be given as its keyword argument instead.
    only = {"BEARERGUARD_ISSUER": BASE["BEARERGUARD_ISSUER"]}
    assert ResourceServer.from_env(only, audience="api://kw").issuers[0].audience == ("api://kw",)
    with pytest.raises(ConfigurationError, match="BEARERGUARD_AUDIENCE is required"):
        ResourceServer.from_env(only, leeway=1)


def test_env_bad_keyword_issuer_field_names_the_keyword() -> None:
    with pytest.raises(ConfigurationError, match="scope_claims must be a list") as info:
        ResourceServer.from_env(BASE, scope_claims="roles")
    assert info.value.field == "scope_claims"
    assert "BEARERGUARD_SCOPE_CLAIMS" not in str(info.value)


def test_env_keyword_issuer_fields_with_several_issuers_are_an_error() -> None:
    environ = {
        "BEARERGUARD_ISSUERS": "a b",
        **{f"BEARERGUARD_{n}_ISSUER": f"https://idp.test/{n}" for n in "AB"},
        **{f"BEARERGUARD_{n}_AUDIENCE": "api://orders" for n in "AB"},
    }
    with pytest.raises(ConfigurationError, match=r"audience: .*several"):
        ResourceServer.from_env(environ, audience="api://x")


def test_env_keyword_issuers_and_introspection_replace_the_variables() -> None:
    mine = Issuer(issuer="https://idp.test/mine", audience="api://mine")
    server = ResourceServer.from_env(BASE, issuers=[mine])
    assert server.issuers == (mine,)
    with pytest.raises(ConfigurationError, match=r"leeway: .*issuers="):
        ResourceServer.from_env(BASE, issuers=[mine], leeway=1)
    # Introspection given as an argument: no issuer variable is then required.
    introspection = Introspection(
        endpoint="https://idp.test/introspect", client_id="c", client_secret="s"
    )
    assert ResourceServer.from_env({}, introspection=introspection).issuers == ()
