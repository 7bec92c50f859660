"""examples/jamf_roles.py against a small stand-in for the Jamf Pro API on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from jamf_roles import JamfRoles

from bearerguard import ResourceServer, RoleResolver, UpstreamUnavailableError, presets
from bearerguard.testing import LocalIssuer

from ..conftest import Twin

CALLER = "0b1f6c2e-6b2d-4a57-9d7c-0a3c2a0d9e11"


class StandIn(ThreadingHTTPServer):
    """`POST /api/oauth/token` (client credentials) and `GET /api/v1/api-roles/{id}`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.roles: dict[str, list[str]] = {
            "2": ["Read Computers", "Read Mobile Devices"],
            "7": ["Update Computers"],
        }
        self.requests: Counter[str] = Counter()
        self.failing = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
        self.server.requests["token"] += 1
        if form.get("client_secret") != ["roles-secret"]:
            self._send(401, {"error": "invalid_client"})
            return
        self._send(200, {"access_token": "jamf-token", "token_type": "Bearer", "expires_in": 60})

    def do_GET(self) -> None:
        role_id = self.path.removeprefix("/api/v1/api-roles/")
        self.server.requests[role_id] += 1
        if self.headers["authorization"] != "Bearer jamf-token":
            self._send(401, {"httpStatus": 401})
        elif self.server.failing:
            self._send(500, {"httpStatus": 500})
        elif role_id not in self.server.roles:
            self._send(404, {"httpStatus": 404, "errors": []})
        else:
            name = f"role {role_id}"
            privileges = self.server.roles[role_id]
            self._send(200, {"id": role_id, "displayName": name, "privileges": privileges})

    def _send(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def jamf() -> Iterator[LocalIssuer]:
    with LocalIssuer(rfc9068=False) as issuer:
        yield issuer


def resource_server(jamf: LocalIssuer, lookup: JamfRoles) -> tuple[ResourceServer, RoleResolver]:
    roles = RoleResolver(lookup)
    issuer = presets.jamf_pro(jamf.issuer, [CALLER], roles, jwks_uri=jamf.jwks_uri)
    return ResourceServer(issuer), roles


def caller_token(jamf: LocalIssuer) -> str:
    return jamf.mint(audience=CALLER, subject=CALLER, scope=["api-role:2", "api-role:7"])


def test_privileges_come_from_the_jamf_api(
    jamf: LocalIssuer, stand_in: StandIn, twin: Twin
) -> None:
    lookup = JamfRoles(stand_in.url, "roles-client", "roles-secret")
    server, roles = resource_server(jamf, lookup)
    token = caller_token(jamf)
    assert twin.verify(server, token).scopes == {
        "Read Computers",
        "Read Mobile Devices",
        "Update Computers",
    }
    twin.verify(server, token)
    assert stand_in.requests == {"token": 1, "2": 1, "7": 1}  # one sign-in, roles cached
    stand_in.roles["7"] = ["Delete Computers"]
    del stand_in.roles["2"]  # a deleted role grants nothing
    roles.invalidate()
    assert twin.verify(server, token).scopes == {"Delete Computers"}
    lookup.close()


def test_a_failing_jamf_api_is_503(jamf: LocalIssuer, stand_in: StandIn, twin: Twin) -> None:
    stand_in.failing = True
    lookup = JamfRoles(stand_in.url, "roles-client", "roles-secret")
    server, _ = resource_server(jamf, lookup)
    with pytest.raises(UpstreamUnavailableError):
        twin.verify(server, caller_token(jamf))
    stand_in.failing = False
    assert "Update Computers" in twin.verify(server, caller_token(jamf)).scopes
    lookup.close()


def test_wrong_credentials_for_jamf_are_503(
    jamf: LocalIssuer, stand_in: StandIn, twin: Twin
) -> None:
    lookup = JamfRoles(stand_in.url, "roles-client", "wrong")
    server, _ = resource_server(jamf, lookup)
    with pytest.raises(UpstreamUnavailableError):
        twin.verify(server, caller_token(jamf))
    lookup.close()
