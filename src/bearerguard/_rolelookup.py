"""A role lookup over HTTP for `RoleResolver` (Jamf Pro's `GET /api/v1/api-roles/{id}`), as a flow.

The lookup is a generator flow like every other exchange with an authorization server: it yields
the `Fetch`es it needs (a client-credentials token when it has none left, then the role) and the
server's own drivers carry them out, on its HTTP clients and with its timeout. What the answers
mean is decided here: 200 with a list of strings is the role's privileges, 404 is a role the
server does not know (it grants nothing), anything else is a 503, never a grant.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote

from ._assertion import basic_authorization
from ._errors import ConfigurationError, UpstreamUnavailableError
from ._flow import Fetch, Fetched, Flow, Outcome, describe
from ._logfields import upstream_fields
from ._redact import safe_url
from ._urls import check_url

logger = logging.getLogger("bearerguard.roles")

# A kept access token is used until this share of its lifetime has passed.
_TOKEN_REUSE = 0.8
_DEFAULT_TOKEN_LIFETIME = 60.0  # when the token answer has no `expires_in`
_AUTH_METHODS = ("client_secret_post", "client_secret_basic")


class HTTPRoleLookup:
    """Look a role's privileges up over HTTP: `RoleResolver(HTTPRoleLookup(...))`.

    `url` has `{id}` where the role id goes (percent-encoded); its answer is a JSON object whose
    member `privileges` is the list of the role's privilege names. The lookup authenticates with
    fixed `headers` (an API key, say), or as an OAuth client (RFC 6749 §4.4): with
    `token_endpoint`, `client_id` and `client_secret` it gets an access token by the
    client-credentials grant, sending the credentials in the form body (`client_secret_post`,
    what Jamf Pro expects) or as HTTP Basic (`client_secret_basic`), and keeps it for 80% of its
    `expires_in`. A 401 from the role endpoint drops the kept token.

    A 404 is a role the server does not know: it grants nothing. Any other answer, a body that is
    not such a list, or no answer is `UpstreamUnavailableError` (503), never a grant.

    The requests run on the `ResourceServer`'s HTTP clients, with its timeout (the server hands
    them over when the resolver is configured on one of its issuers).

    Example::

        roles = RoleResolver(HTTPRoleLookup(
            "https://acme.jamfcloud.com/api/v1/api-roles/{id}",
            token_endpoint="https://acme.jamfcloud.com/api/oauth/token",
            client_id=ROLES_CLIENT, client_secret=ROLES_SECRET,
        ))
    """

    def __init__(
        self,
        url: str,
        *,
        privileges: str = "privileges",
        headers: Mapping[str, str] | None = None,
        token_endpoint: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        auth_method: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post",
        allow_http: bool = False,
    ) -> None:
        owner = "role lookup"
        if not isinstance(url, str) or url.count("{id}") != 1:
            raise ConfigurationError(f"{owner}: url must hold '{{id}}' once", field="url")
        check_url(url.replace("{id}", "0"), allow_http=allow_http, owner=owner, field="url")
        check_url(token_endpoint, allow_http=allow_http, owner=owner, field="token_endpoint")
        client = (token_endpoint, client_id, client_secret)
        if any(part is not None for part in client) and not all(
            isinstance(part, str) and part for part in client
        ):
            raise ConfigurationError(
                f"{owner}: token_endpoint, client_id and client_secret go together",
                field="client_secret",
            )
        if auth_method not in _AUTH_METHODS:
            raise ConfigurationError(
                f"{owner}: auth_method must be one of {_AUTH_METHODS}", field="auth_method"
            )
        if not isinstance(privileges, str) or not privileges:
            raise ConfigurationError(
                f"{owner}: privileges must be a member name", field="privileges"
            )
        self.url = url
        self.privileges = privileges
        self.token_endpoint = token_endpoint
        self._headers = tuple((str(k), str(v)) for k, v in (headers or {}).items())
        self._client = (client_id, client_secret) if token_endpoint else None
        self._auth_method = auth_method
        self._token: tuple[str, float] | None = None  # (access token, reuse until `now`)
        self._lock = threading.Lock()  # lookups of several roles run at once

    def __repr__(self) -> str:  # never the secret, never the kept token
        return f"HTTPRoleLookup({safe_url(self.url)!r})"

    def needs_token(self, now: float) -> bool:
        """Must the next lookup sign in first? (Callers run `sign_in` once for concurrent ones.)"""
        if self._client is None:
            return False
        with self._lock:
            kept = self._token
        return kept is None or now >= kept[1]

    def flow(self, role_id: str, now: float) -> Flow[frozenset[str]]:
        """The role's privileges: the fetches it needs, then the answer (see the class)."""
        headers = self._headers
        if self._client is not None:
            token = yield from self.sign_in(now)
            headers = (*headers, ("authorization", f"Bearer {token}"))
        url = self.url.replace("{id}", quote(role_id, safe=""))
        outcome = yield Fetch(url, headers=headers)
        if isinstance(outcome, Fetched):
            if outcome.status == 404:
                return frozenset()
            if outcome.status == 401 and self._client is not None:
                with self._lock:
                    self._token = None  # revoked or expired early: the next lookup gets one
            if outcome.status == 200 and outcome.document is not None:
                privileges = outcome.document.get(self.privileges)
                if isinstance(privileges, list) and all(isinstance(p, str) for p in privileges):
                    return frozenset(privileges)
        raise self._failed(url, outcome)

    def sign_in(self, now: float) -> Flow[str]:
        """The kept access token, or a new one from the token endpoint (client credentials)."""
        with self._lock:
            kept = self._token
        if kept is not None and now < kept[1]:
            return kept[0]
        if self._client is None or self.token_endpoint is None:
            raise ConfigurationError("this role lookup has no client credentials")
        client_id, secret = self._client
        form = [("grant_type", "client_credentials")]
        headers: tuple[tuple[str, str], ...] = ()
        if self._auth_method == "client_secret_post":
            form += [("client_id", client_id), ("client_secret", secret)]  # type: ignore[list-item]
        else:
            headers = (("authorization", basic_authorization(client_id or "", secret or "")),)
        outcome = yield Fetch(self.token_endpoint, "POST", headers=headers, form=tuple(form))
        if isinstance(outcome, Fetched) and outcome.status == 200 and outcome.document:
            token = outcome.document.get("access_token")
            lifetime = outcome.document.get("expires_in", _DEFAULT_TOKEN_LIFETIME)
            if (
                isinstance(token, str)
                and token
                and isinstance(lifetime, int | float)
                and not isinstance(lifetime, bool)
                and math.isfinite(lifetime)
                and lifetime > 0
            ):
                with self._lock:
                    self._token = (token, now + _TOKEN_REUSE * lifetime)
                return token
        raise self._failed(self.token_endpoint, outcome)

    @staticmethod
    def _failed(url: str, outcome: Outcome) -> UpstreamUnavailableError:
        # The status or transport failure only: bodies may echo what was sent (a secret).
        where = f"role lookup at {safe_url(url)}"
        fields = upstream_fields("roles_failed", issuer=None, upstream=url)
        logger.error("%s: %s", where, describe(outcome), extra=fields)
        return UpstreamUnavailableError(where)
