"""The scripted client of `bearerguard demo`: its steps, each a real HTTP exchange.

Tokens come from the LocalIssuer's token endpoint by client credentials (RFC 6749 §4.4, with
client_secret_basic or client_secret_post, §2.3.1); the API's answers follow RFC 6750 §3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import jwt

from ..testing import DPoPKey, LocalIssuer

CLIENTS = {"demo-client": "demo-secret", "jamf-client": "jamf-secret"}
API_CLIENT = ("orders-api", "orders-api-secret")  # the API's own credentials, for introspection
PRIVILEGES = {"2": ["Read Computers"], "7": ["Update Computers"]}  # the Jamf-style role table


@dataclass(frozen=True)
class Step:
    title: str
    act: Callable[[], tuple[str, httpx.Response]]  # what was sent, and the API's answer
    status: int
    shows: tuple[str, ...]  # must appear in what is printed of the answer
    why: str


class Client:
    """The scripted machine client: tokens from the token endpoint, calls to the API."""

    def __init__(self, http: httpx.Client, issuer: LocalIssuer, api: str) -> None:
        self.http, self.issuer, self.api = http, issuer, api

    def token(self, client: str, form: Mapping[str, str], *, post: bool = False) -> tuple[str, str]:
        """A token by client credentials (secret_basic, or secret_post); and how it was got."""
        secret, method = CLIENTS[client], "client_secret_post" if post else "client_secret_basic"
        credentials = {"client_id": client, "client_secret": secret} if post else {}
        answer = self.http.post(
            self.issuer.token_endpoint,
            data={"grant_type": "client_credentials", **form, **credentials},
            auth=httpx.USE_CLIENT_DEFAULT if post else httpx.BasicAuth(client, secret),
        )
        answer.raise_for_status()
        params = " ".join(f"{name}={value}" for name, value in form.items())  # no secret here
        return answer.json()["access_token"], f"POST /token ({method}, {client}) {params}"

    def call(self, path: str, token: str | None) -> httpx.Response:
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        return self.http.get(self.api + path, headers=headers)

    def dpop_token(self, key: DPoPKey, form: Mapping[str, str]) -> tuple[str, str]:
        """A DPoP-bound token (RFC 9449 §5): the token request carries a proof of `key`."""
        client, secret = "demo-client", CLIENTS["demo-client"]
        answer = self.http.post(
            self.issuer.token_endpoint,
            data={"grant_type": "client_credentials", **form},
            auth=httpx.BasicAuth(client, secret),
            headers={"dpop": key.proof("POST", self.issuer.token_endpoint)},
        )
        answer.raise_for_status()
        params = " ".join(f"{name}={value}" for name, value in form.items())
        return answer.json()["access_token"], f"POST /token with a DPoP proof ({client}) {params}"

    def dpop_call(self, path: str, token: str, key: DPoPKey) -> httpx.Response:
        """A call with the DPoP scheme and a fresh proof of `key` for this method and URL."""
        url = self.api + path
        proof = key.proof("GET", url, token)
        return self.http.get(url, headers={"authorization": f"DPoP {token}", "dpop": proof})


def describe_token(token: str) -> str:
    """A name for a token that cannot be replayed, nor help to guess it: its kind, length and a
    SHA-256 fingerprint (no prefix of it: a JWT's first characters are its header, but an opaque
    token's are secret)."""
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:8]
    if token.count(".") != 2:
        return f"an opaque token ({len(token)} chars, sha256 {fingerprint})"
    kid = jwt.get_unverified_header(token).get("kid")
    return f"a JWT ({len(token)} chars, sha256 {fingerprint}, kid {kid})"


def steps(client: Client, issuer: LocalIssuer) -> list[Step]:
    def call(path: str, token: str | None, how: str) -> tuple[str, httpx.Response]:
        shown = "" if token is None else f" with {describe_token(token)} from {how}"
        return f"GET {path}{shown}", client.call(path, token)

    def with_token(
        path: str, who: str, form: Mapping[str, str], *, post: bool = False
    ) -> Callable[[], tuple[str, httpx.Response]]:
        return lambda: call(path, *client.token(who, form, post=post))

    def expired() -> tuple[str, httpx.Response]:
        token = issuer.mint(subject="demo-client", scope="orders.read", expires_in=-120)
        return call("/orders", token, "issuer.mint(expires_in=-120): exp 2 min ago")

    def rotated() -> tuple[str, httpx.Response]:
        issuer.rotate()  # the old key stays published beside the new one, as real issuers do
        fetched = issuer.count("jwks")
        sent, answer = call("/orders", *client.token("demo-client", {"scope": "orders.read"}))
        return f"{sent}; the API fetched the JWKS {issuer.count('jwks') - fetched} time(s)", answer

    def down(form: Mapping[str, str]) -> Callable[[], tuple[str, httpx.Response]]:
        def act() -> tuple[str, httpx.Response]:
            token, how = client.token("demo-client", form)
            issuer.go_down("error", 503)  # every request to the issuer now gets a 503
            issuer.reset_counts()
            try:
                sent, answer = call("/orders", token, how + ", then the issuer went down")
            finally:
                asked = issuer.count()
                issuer.come_back()
            return f"{sent}; {asked} request(s) reached the issuer", answer

        return act

    reader = {"scope": "orders.read"}
    opaque = {**reader, "token_format": "opaque"}
    holder = DPoPKey("ES256")  # the client's proof-of-possession key (RFC 9449)

    taken: list[str] = []  # the bound token, stolen in the step after

    def bound() -> tuple[str, httpx.Response]:
        token, how = client.dpop_token(holder, reader)
        taken.append(token)
        shown = f"GET /orders (DPoP) with {describe_token(token)} from {how}, and a proof"
        return shown, client.dpop_call("/orders", token, holder)

    def stolen() -> tuple[str, httpx.Response]:
        token = taken[-1] if taken else client.dpop_token(holder, reader)[0]
        return call("/orders", token, "the step before, replayed as Bearer without the key")

    return [
        Step(
            "no token",
            lambda: call("/orders", None, ""),
            401,
            ("resource_metadata=",),
            "no credentials: a challenge without an error code (RFC 6750 §3.1); "
            "resource_metadata leads clients to the AS (RFC 9728)",
        ),
        Step(
            "scope granted",
            with_token("/orders", "demo-client", reader),
            200,
            ('"scopes":["orders.read"]',),
            "JWT verified with the issuer's JWKS (fetched once by discovery, then cached)",
        ),
        Step(
            "scope missing",
            with_token("/orders", "demo-client", {"scope": "reports.read"}),
            403,
            ('error="insufficient_scope"', 'scope="orders.read"'),
            "a valid token without orders.read: 403 names the scope to ask for",
        ),
        Step(
            "expired token",
            expired,
            401,
            ("The access token has expired.",),
            "exp is 2 min in the past, beyond the 30 s leeway (the token endpoint only "
            "issues live tokens, so the issuer minted this one directly)",
        ),
        Step(
            "other audience",
            with_token(
                "/orders", "demo-client", {**reader, "resource": "https://billing.example.test"}
            ),
            401,
            ("not intended for this resource",),
            "aud names another API (RFC 8707 resource), so this API refuses it",
        ),
        Step(
            "Jamf api-role",
            with_token("/computers", "jamf-client", {"scope": "api-role:2 api-role:7"}, post=True),
            200,
            ('"scopes":["Read Computers","Update Computers"]',),
            "the token names roles, not privileges: RoleResolver asked the demo's role "
            "table for roles 2 and 7 and granted the union",
        ),
        Step(
            "opaque token",
            with_token("/orders", "demo-client", opaque),
            200,
            ('"source":"introspection"',),
            "not a JWT: the API asked the issuer's introspection endpoint (RFC 7662, "
            "its own client_secret_basic credentials) and caches the answer",
        ),
        Step(
            "DPoP-bound token",
            bound,
            200,
            ('"scopes":["orders.read"]',),
            "the token is bound to the client's key (cnf.jkt, RFC 9449): the request carries "
            "a proof signed by that key for this method and URL, checked on every request",
        ),
        Step(
            "stolen DPoP token",
            stolen,
            401,
            ("bound to a DPoP key",),
            "the bound token without its key (as a thief has it): refused, worthless",
        ),
        Step(
            "key rotation",
            rotated,
            200,
            ('"source":"jwt"',),
            "the issuer rotated its key; an unknown kid makes the API refetch the JWKS "
            "once (cool-down 0 s in this demo, 10 s by default)",
        ),
        Step(
            "AS down, keys cached",
            down(reader),
            200,
            ('"source":"jwt"',),
            "a token the API never saw, verified offline with the cached keys",
        ),
        Step(
            "AS down, opaque token",
            down(opaque),
            503,
            ("temporarily_unavailable",),
            "introspection failed: the AS's trouble is a 503, never a 401 blaming the client",
        ),
    ]
