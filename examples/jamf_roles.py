"""Resolve Jamf Pro API roles (`api-role:2` scopes) to their privileges through the Jamf Pro API.

The resource server signs in to Jamf as an API client of its own (one with the "Read API Roles"
privilege), then asks `GET /api/v1/api-roles/{id}`, which answers
`{"id": "2", "displayName": "...", "privileges": ["Read Computers", ...]}`.

    from bearerguard import ResourceServer, RoleResolver, presets
    roles = RoleResolver(JamfRoles("https://acme.jamfcloud.com", ROLES_CLIENT, ROLES_SECRET))
    server = ResourceServer(presets.jamf_pro("https://acme.jamfcloud.com", CALLERS, roles))
"""

from __future__ import annotations

import threading
import time

import httpx


class JamfRoles:
    """A role lookup for `RoleResolver`: `JamfRoles(...)(role_id)` is that role's privileges.

    A role Jamf does not know (404) grants nothing; any other failure raises, which the resolver
    answers with 503. Its own access token is kept until shortly before it expires.
    """

    def __init__(
        self, server: str, client_id: str, client_secret: str, *, timeout: float = 5.0
    ) -> None:
        self.server = server.rstrip("/")
        self._credentials = {"client_id": client_id, "client_secret": client_secret}
        self._http = httpx.Client(timeout=timeout)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()  # lookups of different roles run in parallel threads

    def __call__(self, role_id: str) -> list[str]:
        response = self._http.get(
            f"{self.server}/api/v1/api-roles/{role_id}",
            headers={"authorization": f"Bearer {self._access_token()}"},
        )
        if response.status_code == 404:
            return []
        response.raise_for_status()
        privileges = response.json()["privileges"]
        if not isinstance(privileges, list):
            raise TypeError("privileges is not a list")
        return privileges

    def _access_token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._token[1]:
                response = self._http.post(
                    f"{self.server}/api/oauth/token",
                    data={"grant_type": "client_credentials", **self._credentials},
                )
                response.raise_for_status()
                answer = response.json()
                expires_in = float(answer.get("expires_in", 60))
                self._token = (answer["access_token"], time.monotonic() + expires_in * 0.8)
            return self._token[0]

    def close(self) -> None:
        self._http.close()
