"""DPoP (RFC 9449; MCP's SEP-1932) through the MCP SDKs, whose auth reads only `Bearer` tokens.

Both SDKs (the official one and FastMCP) authenticate with the SDK's `BearerAuthBackend`, which
hands the verifier the token text alone: no scheme, no proof, no method or URL, so a DPoP-bound
token could only be refused there. `DPoPMiddleware` sits outside the SDK's middleware and, when
the server accepts DPoP, verifies the whole request as the other integrations do
(`averify_credentials` of what `asgi.context` reads). The SDK then decides as before which paths
need a token and which scopes, from what was judged here:

- an accepted token reaches the SDK as `Bearer <token>`, and the verifier (`mcp.verified`)
  answers with the token accepted here instead of verifying the bare text again;
- a refused request reaches it without credentials, and the SDK's 401 is replaced by ours: the
  DPoP challenges (`algs`, `error="invalid_dpop_proof"`, a `DPoP-Nonce` to retry with, both
  schemes for a request without credentials) and `resource_metadata`, with the `scope` the
  SDK's challenge named (FastMCP names the scopes a client should ask for);
- an unreachable authorization server is raised by the verifier, as without DPoP (503 with
  `UpstreamUnavailableMiddleware`);
- the SDK's RFC 9728 document gains `dpop_signing_alg_values_supported` and
  `dpop_bound_access_tokens_required` (RFC 9728 §2).

With DPoP off the middleware passes every request through untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

from .. import asgi
from .._challenge import Challenge
from .._errors import BearerError, UpstreamUnavailableError
from .._guard import Guard
from .._metadata import dpop_members
from .._token import AccessToken
from .._types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .._dpop import DPoPPolicy
    from .._server import ResourceServer


class Verifier(Protocol):
    """What `DPoPMiddleware` needs of the SDK's verifier (both integrations' verifiers)."""

    server: ResourceServer
    resource_url: str


class Judged:
    """What the middleware decided of one request, for the verifier the SDK calls inside it."""

    __slots__ = ("access", "refusal", "server", "token")

    def __init__(
        self,
        server: ResourceServer,
        token: str | None,
        access: AccessToken | None,
        refusal: BearerError | UpstreamUnavailableError | None,
    ) -> None:
        self.server, self.token, self.access, self.refusal = server, token, access, refusal

    def outcome(self) -> AccessToken:
        """The accepted token, or the refusal raised again (where the SDK asks the verifier)."""
        if self.access is None:
            raise self.refusal if self.refusal is not None else RuntimeError("nothing judged")
        return self.access


_JUDGED: ContextVar[Judged | None] = ContextVar("bearerguard_mcp_judged", default=None)


def judged(server: ResourceServer, token: str) -> Judged | None:
    """The middleware's judgement of `token` at `server`, if it judged this request."""
    found = _JUDGED.get()
    return found if found is not None and found.server is server and found.token == token else None


class DPoPMiddleware:
    """Verify DPoP requests (RFC 9449) for an MCP SDK's auth; see the module docstring.

    Add it outside the SDK's middleware: `app.add_middleware(DPoPMiddleware, verifier=verifier)`
    for the official SDK (FastMCP's `BearerGuardAuth` adds it itself).
    """

    def __init__(self, app: ASGIApp, verifier: Verifier) -> None:
        self.app = app
        self.server = verifier.server
        self.guard = Guard(verifier.server, resource=verifier.resource_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dpop = self.server.dpop
        if scope["type"] != "http" or dpop is None:
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.guard.metadata_paths:
            await self.app(scope, receive, _with_dpop_members(send, dpop))
            return
        token, access, refusal = None, None, None
        try:
            values, query = asgi.credentials(scope)
            credentials = self.guard.credentials(
                values, query, asgi.context(scope, self.guard.proxies)
            )
            token = credentials.token
            access = await self.server.averify_credentials(credentials)
        except (BearerError, UpstreamUnavailableError) as exc:  # reported where judged
            refusal = exc
        # The SDK sees the token it will be handed, or none when it was refused here.
        passed = None if isinstance(refusal, BearerError) else token
        reset = _JUDGED.set(Judged(self.server, token, access, refusal))
        try:
            await self.app(_as_bearer(scope, passed), receive, self._answer(scope, send, refusal))
        finally:
            _JUDGED.reset(reset)

    def _answer(
        self, scope: Scope, send: Send, refusal: BearerError | UpstreamUnavailableError | None
    ) -> Send:
        """`send`, with the SDK's 401 replaced by the refusal judged here."""
        if not isinstance(refusal, BearerError):
            return send
        replaced = False

        async def answer(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 401:
                replaced = True
                challenge = _with_scope(self.guard.render(refusal), message.get("headers", ()))
                await asgi.refuse(scope, send, challenge)
            elif not replaced:  # once replaced, the SDK's body is dropped
                await send(message)

        return answer


# The `scope` auth-param of the SDK's challenge (FastMCP names the scopes to ask for: MCP's
# scope selection reads it), kept in ours.
_SCOPE = re.compile(rb'(?:^|[\s,])scope="((?:[^"\\]|\\.)*)"')


def _with_scope(challenge: Challenge, sdk_headers: Iterable[tuple[bytes, bytes]]) -> Challenge:
    """`challenge`, each of its challenges naming the `scope` the SDK's 401 named, if any."""
    sdk = b", ".join(v for n, v in sdk_headers if n.lower() == b"www-authenticate")
    found = _SCOPE.search(sdk)
    if found is None:
        return challenge
    named = f'scope="{found.group(1).decode("latin-1")}", resource_metadata="'
    headers = tuple(
        (name, value.replace('resource_metadata="', named) if name == "www-authenticate" else value)
        for name, value in challenge.headers
    )
    return Challenge(challenge.status, headers, challenge.body)


def _as_bearer(scope: Scope, token: str | None) -> Scope:
    """`scope` as the SDK's bearer-only auth must see it: `Bearer <token>`, or no credentials."""
    headers = [(n, v) for n, v in scope["headers"] if n.lower() != b"authorization"]
    if token is not None:
        headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
    return {**scope, "headers": headers}


def _with_dpop_members(send: Send, dpop: DPoPPolicy) -> Send:
    """`send`, adding the DPoP members to the SDK's RFC 9728 document (a small JSON object)."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def amend(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body, headers = b"".join(chunks), list(start.get("headers", ()))
        try:
            document = json.loads(body) if start["status"] == 200 else None
        except ValueError:
            document = None
        if isinstance(document, dict):
            body = json.dumps(document | dpop_members(dpop)).encode()
            headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return amend
