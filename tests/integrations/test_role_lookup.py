"""`HTTPRoleLookup` and `presets.jamf_pro_roles`: role privileges over real HTTP on 127.0.0.1, on
the server's own HTTP clients and timeout; a 404 is an unknown role, anything else a 503."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearerguard import (
    ConfigurationError,
    HTTPRoleLookup,
    ResourceServer,
    RoleResolver,
    UpstreamUnavailableError,
    presets,
)
from bearerguard._flow import Fetch, Fetched, FetchFailed, Outcome
from bearerguard.testing import LocalIssuer

from ..conftest import Twin

CALLER = "0b1f6c2e-6b2d-4a57-9d7c-0a3c2a0d9e11"
SECRET = "roles-secret-value"


class Jamf(ThreadingHTTPServer):
    """`POST /api/oauth/token` (client_secret_post) and `GET /api/v1/api-roles/{id}`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.roles: dict[str, Any] = {"2": ["Read Computers"], "7": ["Update Computers"]}
        self.requests: Counter[str] = Counter()
        self.valid: set[str] = set()
        self.role_status: int | None = None  # answer every role request with this status
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Jamf

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
        self.server.requests["token"] += 1
        if form != {
            "grant_type": ["client_credentials"],
            "client_id": ["roles-client"],
            "client_secret": [SECRET],
        }:
            self._send(401, {"error": "invalid_client"})
            return
        token = f"jamf-token-{self.server.requests['token']}"
        self.server.valid.add(token)
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 60})

    def do_GET(self) -> None:
        role_id = self.path.removeprefix("/api/v1/api-roles/")
        self.server.requests[role_id] += 1
        time.sleep(self.server.delay)
        presented = self.headers["authorization"].removeprefix("Bearer ")
        if presented not in self.server.valid:
            self._send(401, {"httpStatus": 401})
        elif self.server.role_status is not None:
            self._send(self.server.role_status, {"httpStatus": self.server.role_status})
        elif role_id not in self.server.roles:
            self._send(404, {"httpStatus": 404, "errors": []})
        else:
            self._send(200, {"id": role_id, "privileges": self.server.roles[role_id]})

    def _send(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def jamf_api() -> Iterator[Jamf]:
    server = Jamf()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def jamf() -> Iterator[LocalIssuer]:
    with LocalIssuer(rfc9068=False) as issuer:
        yield issuer


def serve(jamf: LocalIssuer, roles: RoleResolver, **options: Any) -> ResourceServer:
    issuer = presets.jamf_pro(jamf.issuer, [CALLER], roles, jwks_uri=jamf.jwks_uri)
    return ResourceServer(issuer, **options)


def caller_token(jamf: LocalIssuer, *roles: str) -> str:
    scope = [f"api-role:{r}" for r in roles or ("2", "7")]
    return jamf.mint(audience=CALLER, subject=CALLER, scope=scope)


def test_jamf_pro_roles_resolve_over_http(jamf: LocalIssuer, jamf_api: Jamf, twin: Twin) -> None:
    roles = presets.jamf_pro_roles(jamf_api.url, "roles-client", SECRET)
    server = serve(jamf, roles)
    token = caller_token(jamf)
    accepted = twin.verify(server, token)
    assert accepted.scopes == {"Read Computers", "Update Computers"}
    assert accepted.client_id == CALLER
    twin.verify(server, token)
    assert jamf_api.requests == {"token": 1, "2": 1, "7": 1}  # one sign-in, roles cached
    del jamf_api.roles["2"]  # a deleted role (404) grants nothing
    roles.invalidate()
    assert twin.verify(server, token).scopes == {"Update Computers"}
    assert jamf_api.requests["token"] == 1  # the kept token is reused


def test_a_revoked_lookup_token_is_dropped_and_replaced(
    jamf: LocalIssuer, jamf_api: Jamf, twin: Twin
) -> None:
    roles = presets.jamf_pro_roles(jamf_api.url, "roles-client", SECRET)
    server = serve(jamf, roles)
    twin.verify(server, caller_token(jamf, "2"))
    jamf_api.valid.clear()  # Jamf forgot our token: the next lookup is refused once
    with pytest.raises(UpstreamUnavailableError):
        twin.verify(server, caller_token(jamf, "7"))
    assert twin.verify(server, caller_token(jamf, "7")).scopes == {"Update Computers"}
    assert jamf_api.requests["token"] == 2


@pytest.mark.parametrize("status", [500, 403, 401, 200])
def test_any_answer_but_200_or_404_is_503(
    jamf: LocalIssuer, jamf_api: Jamf, twin: Twin, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    roles = presets.jamf_pro_roles(jamf_api.url, "roles-client", SECRET)
    server = serve(jamf, roles)
    jamf_api.role_status = status  # a 200 here has no privileges member
    with caplog.at_level(logging.DEBUG), pytest.raises(UpstreamUnavailableError):
        twin.verify(server, caller_token(jamf, "2"))
    assert f"role lookup at {jamf_api.url}/api/v1/api-roles/2: HTTP {status}" in caplog.text
    assert SECRET not in caplog.text and "jamf-token" not in caplog.text
    (failed,) = [r for r in caplog.records if r.getMessage().startswith("role lookup at")]
    fields = failed.bearerguard  # type: ignore[attr-defined]  # structured, as every failure
    assert (fields["event"], fields["upstream"]) == (
        "roles_failed",
        f"{jamf_api.url}/api/v1/api-roles/2",
    )
    jamf_api.role_status = None
    assert twin.verify(server, caller_token(jamf, "2")).scopes == {"Read Computers"}  # not cached


def test_wrong_lookup_credentials_are_503(
    jamf: LocalIssuer, jamf_api: Jamf, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(jamf, presets.jamf_pro_roles(jamf_api.url, "roles-client", "wrong"))
    with pytest.raises(UpstreamUnavailableError):
        twin.verify(server, caller_token(jamf))
    assert "wrong" not in caplog.text


def test_the_lookup_uses_the_servers_clients_and_timeout(
    jamf: LocalIssuer, jamf_api: Jamf, twin: Twin
) -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async def arecord(request: httpx.Request) -> None:
        seen.append(request.url.path)

    timeout = httpx.Timeout(0.5)
    server = serve(
        jamf,
        presets.jamf_pro_roles(jamf_api.url, "roles-client", SECRET),
        http_client=httpx.Client(timeout=timeout, event_hooks={"request": [record]}),
        async_http_client=httpx.AsyncClient(timeout=timeout, event_hooks={"request": [arecord]}),
    )
    twin.verify(server, caller_token(jamf, "2"))
    assert seen[-2:] == ["/api/oauth/token", "/api/v1/api-roles/2"]
    jamf_api.delay = 2.0  # longer than the server's timeout
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailableError):
        twin.verify(server, caller_token(jamf, "7"))
    assert time.monotonic() - started < 1.5


def test_http_role_lookup_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="id"):
        HTTPRoleLookup("https://jamf.test/api/v1/api-roles/")
    with pytest.raises(ConfigurationError, match="https"):
        HTTPRoleLookup("http://jamf.test/api/v1/api-roles/{id}")
    with pytest.raises(ConfigurationError, match="together"):
        HTTPRoleLookup("https://jamf.test/r/{id}", token_endpoint="https://jamf.test/t")
    with pytest.raises(ConfigurationError, match="auth_method"):
        HTTPRoleLookup("https://jamf.test/r/{id}", auth_method="none")  # type: ignore[arg-type]
    lookup = HTTPRoleLookup(
        "https://jamf.test/r/{id}",
        token_endpoint="https://jamf.test/t",
        client_id="c",
        client_secret=SECRET,
    )
    assert SECRET not in repr(lookup) and SECRET not in repr(RoleResolver(lookup).__dict__)


def _drive(lookup: HTTPRoleLookup, role_id: str, outcome: Outcome) -> tuple[Fetch, Any]:
    flow = lookup.flow(role_id, 0.0)
    fetch = next(flow)
    try:
        flow.send(outcome)
    except StopIteration as done:
        return fetch, done.value
    except UpstreamUnavailableError as exc:
        return fetch, exc
    raise AssertionError("the flow asked for a second fetch")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@given(
    status=st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 503]),
    document=st.none() | st.dictionaries(st.sampled_from(["privileges", "id", "x"]), _json),
    role_id=st.text(min_size=1, max_size=8),
)
def test_role_answers_match_the_oracle(
    status: int, document: dict[str, Any] | None, role_id: str
) -> None:
    lookup = HTTPRoleLookup("https://jamf.test/api/v1/api-roles/{id}", headers={"x-api-key": "k"})
    fetch, result = _drive(lookup, role_id, Fetched(status, document))
    assert fetch.method == "GET" and ("x-api-key", "k") in fetch.headers
    # The role id stays inside its path segment, whatever its characters.
    assert "/" not in fetch.url.removeprefix("https://jamf.test/api/v1/api-roles/")
    assert "?" not in fetch.url and "#" not in fetch.url
    privileges = (document or {}).get("privileges")
    if status == 404:
        assert result == frozenset()
    elif (
        status == 200
        and isinstance(privileges, list)
        and all(isinstance(p, str) for p in privileges)
    ):
        assert result == frozenset(privileges)
    else:
        assert isinstance(result, UpstreamUnavailableError)


@given(
    document=st.none()
    | st.dictionaries(st.sampled_from(["access_token", "expires_in", "token_type"]), _json)
)
def test_token_answers_match_the_oracle(document: dict[str, Any] | None) -> None:
    lookup = HTTPRoleLookup(
        "https://jamf.test/r/{id}",
        token_endpoint="https://jamf.test/t",
        client_id="c",
        client_secret=SECRET,
    )
    flow = lookup.flow("2", 100.0)
    token_fetch = next(flow)
    assert token_fetch.method == "POST" and token_fetch.url == "https://jamf.test/t"
    doc = document or {}
    token, lifetime = doc.get("access_token"), doc.get("expires_in", 60.0)
    good = (
        isinstance(token, str)
        and token != ""
        and isinstance(lifetime, int | float)
        and not isinstance(lifetime, bool)
        and lifetime > 0
        and lifetime != float("inf")
    )
    try:
        role_fetch = flow.send(Fetched(200, document))
    except UpstreamUnavailableError:
        assert not good
        return
    assert good
    assert ("authorization", f"Bearer {token}") in role_fetch.headers


def test_no_answer_is_503() -> None:
    lookup = HTTPRoleLookup("https://jamf.test/r/{id}")
    _, result = _drive(lookup, "2", FetchFailed("ConnectTimeout"))
    assert isinstance(result, UpstreamUnavailableError)
