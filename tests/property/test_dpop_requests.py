"""Property test: whatever a request's Authorization and DPoP headers say, a DPoP-enabled server
answers through its middleware with a documented 400 or 401 (and the challenge of its scheme),
never a 500 and never an acceptance, unless the request is the key holder's own.

The requests go through the WSGI middleware in-process (the same `Guard` and server as under a
real server: `tests/io/test_dpop_http.py` covers the wire), with a real LocalIssuer's keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bearerguard import ResourceServer
from bearerguard.testing import DPoPKey, LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from ..integrations.conftest import wsgi_environ

URL = "http://testserver/orders"
KEY = DPoPKey("ES256")
CHALLENGE = re.compile(r'(Bearer|DPoP)( realm="api")?(, | |$)')


@pytest.fixture(scope="module")
def app(local_issuer_session: LocalIssuer) -> Iterator[tuple[Any, str]]:
    server = ResourceServer(local_issuer_session.issuer_config(), dpop="allowed")
    token = local_issuer_session.mint(dpop_jkt=KEY.jkt)
    yield (
        BearerAuthWSGIMiddleware(lambda e, s: s("200 OK", []) or [b"ok"], server, realm="api"),
        token,
    )
    server.close()


def answer(app: Any, authorization: str | None, proofs: list[str]) -> tuple[int, str]:
    environ = wsgi_environ("GET", "/orders", "")
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    if proofs:
        environ["HTTP_DPOP"] = ", ".join(proofs)  # repeated lines, joined as a server does
    started: list[Any] = []
    b"".join(app(environ, lambda status, headers, *_: started.extend([status, headers])))
    headers = {name.lower(): value for name, value in started[1]}
    return int(started[0].split()[0]), headers.get("www-authenticate", "")


def mutated(data: st.DataObject, text: str) -> str:
    """`text` with one character changed, inserted or removed (never `text` itself)."""
    at = data.draw(st.integers(0, len(text) - 1))
    change = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    char = data.draw(st.characters(codec="ascii").filter(lambda c: c != text[at]))
    if change == "replace":
        return text[:at] + char + text[at + 1 :]
    if change == "insert":
        return text[:at] + char + text[at:]
    return text[:at] + text[at + 1 :]


schemes = st.sampled_from(["DPoP", "dpop", "Bearer", "DPOP", "Basic", "DPoP  "])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_random_dpop_requests_are_documented_refusals(app: tuple[Any, str], data: Any) -> None:
    middleware, token = app
    good = KEY.proof("GET", URL, token)
    scheme = data.draw(schemes)
    credential = data.draw(st.sampled_from([token, mutated(data, token), "", "a b"]))
    authorization = data.draw(st.none() | st.just(f"{scheme} {credential}"))
    proofs = data.draw(
        st.lists(
            st.one_of(
                st.builds(mutated, st.just(data), st.just(good)),
                st.text(max_size=200).filter(lambda t: "\r" not in t and "\n" not in t),
                st.just(KEY.proof("POST", URL, token)),
                st.just(DPoPKey("ES256").proof("GET", URL, token)),  # another key
            ),
            max_size=2,
        )
    )
    status, challenge = answer(middleware, authorization, proofs)
    assert status in (400, 401), (status, challenge)
    if status == 401:
        assert CHALLENGE.match(challenge), challenge
        assert token[-20:] not in challenge and good[-20:] not in challenge


def test_the_key_holders_own_request_is_accepted(app: tuple[Any, str]) -> None:
    # The control of the property above: the one request it never makes is answered 200.
    middleware, token = app
    assert answer(middleware, f"DPoP {token}", [KEY.proof("GET", URL, token)]) == (200, "")
