"""`Guard.admit`/`aadmit`: the one refusal glue every route helper calls, through both twins."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pytest

from bearerguard import AccessToken, Issuer, Requirement, ResourceServer
from bearerguard._challenge import Refused
from bearerguard._guard import SCOPE_KEY, Guard
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import ADAPTER

from ..conftest import Twin
from .conftest import REALM, RM, wsgi_environ

ORDERS = Requirement.of("orders.read")


def _admit(
    twin: Twin, guard: Guard, requirement: Requirement, environ: dict[str, Any]
) -> AccessToken | None:
    if twin.portal is None:
        return guard.admit(requirement, environ, ADAPTER)
    return twin.portal.call(partial(guard.aadmit, requirement, environ, ADAPTER))


def _guard(twin: Twin, issuer: LocalIssuer) -> Guard:
    server = ResourceServer(Issuer(issuer=issuer.issuer, audience=issuer.audience))
    twin.servers.append(server)  # the fixture closes it
    return Guard(server, realm=REALM, resource="https://api.example.test/v1")


def _request(authorization: str | None = None, query: str = "") -> dict[str, Any]:
    environ = wsgi_environ("GET", "/orders", query)
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    return environ


def test_guard_admit_verifies_the_credentials_when_no_middleware_stored_a_token(
    twin: Twin, local_issuer: LocalIssuer
) -> None:
    guard = _guard(twin, local_issuer)
    token = _admit(
        twin, guard, ORDERS, _request("Bearer " + local_issuer.mint(scope="orders.read"))
    )
    assert token is not None and token.client_id == "test-client"
    assert local_issuer.count("jwks") == 1  # verified here, over HTTP


def test_guard_admit_uses_the_stored_token_and_never_reads_the_credentials(
    twin: Twin, local_issuer: LocalIssuer
) -> None:
    guard = _guard(twin, local_issuer)
    stored = twin.authenticate(guard.server, "Bearer " + local_issuer.mint(scope="orders.read"))
    environ = _request("Bearer not-a-jwt", "access_token=x")  # would be refused if read
    environ[SCOPE_KEY] = stored
    assert _admit(twin, guard, ORDERS, environ) is stored
    environ[SCOPE_KEY] = None  # an optional middleware let a tokenless request in
    assert _admit(twin, guard, Requirement.of("orders.read", optional=True), environ) is None


# (Authorization value or "scoped" for a token lacking the scope, query, status, challenge)
REFUSALS = {
    "missing": (None, "", 401, f'Bearer realm="{REALM}", {RM}'),
    "token in URL": ("Bearer x", "access_token=x", 400, None),
    "bad token": ("Bearer not-a-jwt", "", 401, None),
    "scope": ("scoped", "", 403, None),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_guard_admit_raises_one_refusal_rendered_by_the_guard(
    twin: Twin,
    local_issuer: LocalIssuer,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str | None, str, int, str | None],
) -> None:
    authorization, query, status, challenge = case
    guard = _guard(twin, local_issuer)
    if authorization == "scoped":
        authorization = "Bearer " + local_issuer.mint(scope="orders.write")
    with caplog.at_level(logging.INFO, logger="bearerguard"), pytest.raises(Refused) as refused:
        _admit(twin, guard, ORDERS, _request(authorization, query))
    rendered = refused.value.challenge
    assert rendered.status == status
    header = rendered.header("www-authenticate") or ""
    assert header.startswith(f'Bearer realm="{REALM}"') and header.endswith(RM)
    if challenge is not None:
        assert header == challenge
    if status != 401 or authorization is not None:  # a missing token has no description
        assert refused.value.description in rendered.body.decode()
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused: ")]
    assert len(refusals) == 1  # logged once: by the server, or by the scope check
    if authorization is not None:
        assert authorization.split()[-1] not in caplog.text


def test_guard_admit_an_unreachable_issuer_is_a_rendered_503(
    twin: Twin, local_issuer: LocalIssuer
) -> None:
    guard = _guard(twin, local_issuer)
    authorization = "Bearer " + local_issuer.mint(scope="orders.read")
    local_issuer.go_down("refuse")
    with pytest.raises(Refused) as refused:
        _admit(twin, guard, ORDERS, _request(authorization))
    assert refused.value.challenge.status == 503
    assert refused.value.description == "The authorization server could not be reached."
