"""bearerguard as the token verifier of the MCP Python SDK (`mcp` 2.x, `mcp.server.auth`).

MCP servers are OAuth 2.1 resource servers: tokens must be issued for this server's URL (the
RFC 8707 resource, checked as `aud`), and challenges point at RFC 9728 metadata. DPoP-bound
tokens (RFC 9449, MCP's SEP-1932) need `DPoPMiddleware` in front of the SDK's bearer-only auth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

try:
    from mcp.server.auth.provider import AccessToken as SDKAccessToken
    from mcp.server.auth.settings import AuthSettings
    from pydantic import AnyHttpUrl, ConfigDict, TypeAdapter
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'bearerguard.integrations.mcp needs the MCP Python SDK: pip install "bearerguard[mcp]"'
    ) from exc

from .. import (
    AccessToken,
    BearerError,
    ConfigurationError,
    DPoPPolicy,
    Introspection,
    InvalidTokenError,
    Issuer,
    Reason,
    ResourceServer,
    UpstreamUnavailableError,
)
from .._challenge import challenge_for
from .._claims import audiences
from .._errors import Seen
from .._events import Events, TokenRefused
from .._logfields import log_event
from .._sender import DPoPMode
from .._types import ASGIApp, Message, Receive, Scope, Send
from .._validate import strings
from ..asgi import refuse
from ._mcprequest import DPoPMiddleware, judged

__all__ = [
    "BearerGuardVerifier",
    "DPoPMiddleware",
    "UpstreamUnavailableMiddleware",
    "http_url",
    "resource_server",
    "sdk_access_token",
]

SDKTokenT = TypeVar("SDKTokenT", bound=SDKAccessToken)

# Plain AnyHttpUrl turns "https://as.example" into "https://as.example/", and RFC 8414 §3.3
# clients compare issuers exactly: keep URLs as configured, as the SDK's own settings do.
_URL = TypeAdapter(AnyHttpUrl, config=ConfigDict(url_preserve_empty_path=True))


def http_url(url: str) -> AnyHttpUrl:
    """`url` as pydantic's `AnyHttpUrl`, spelled exactly as given (no trailing slash added)."""
    return _URL.validate_python(url)


def resource_server(
    issuer_url: str,
    resource_url: str,
    *,
    introspection: Introspection | None = None,
    dpop: DPoPMode | DPoPPolicy = "off",
    **issuer_options: Any,
) -> ResourceServer:
    """A `ResourceServer` for an MCP server at `resource_url`, which is the expected `aud`.

    `issuer_options` go to `Issuer` (algorithms, leeway, scope_claims, ...). An `Introspection`
    without an audience is given `resource_url` as its audience. `dpop` is the server's DPoP
    rule (RFC 9449, SEP-1932), as `ResourceServer(dpop=...)`.
    """
    if "audience" in issuer_options:
        raise ConfigurationError("the audience of an MCP server is its resource_url")
    if introspection is not None and introspection.audience is None:
        introspection = replace(introspection, audience=resource_url)
    issuer = Issuer(issuer=issuer_url, audience=resource_url, **issuer_options)
    return ResourceServer(issuer, introspection=introspection, dpop=dpop)


async def verified(
    server: ResourceServer, raw: str, resource_url: str, model: type[SDKTokenT]
) -> SDKTokenT | None:
    """The verifier contract both SDKs share: a refused token is None (the SDK answers 401),
    an unreachable authorization server is raised (503), and the token must name us. A request
    `DPoPMiddleware` judged whole (DPoP on) is answered with its judgement."""
    try:
        whole = judged(server, raw)
        access = await server.averify(raw) if whole is None else whole.outcome()
    except BearerError:
        return None  # already logged by the server, with its reason
    return sdk_access_token(access, raw, resource_url, model, server.events)


def sdk_access_token(
    token: AccessToken,
    raw: str,
    resource_url: str,
    model: type[SDKTokenT],
    events: Events | None = None,
) -> SDKTokenT | None:
    """Our `AccessToken` as the SDK's `model`, or None if it was not issued for `resource_url`.

    MCP binds every token to the server (RFC 8707): its `aud` must name `resource_url`, also
    for introspected tokens, whose answers may leave `aud` out (RFC 7662 §2.2). The SDK keys
    sessions on (client_id, iss, sub), so a token naming neither client nor subject is refused.
    """
    named = audiences(token.claims) if "aud" in token.claims else ()  # type-checked already
    client_id = token.client_id or token.subject
    if resource_url not in named or client_id is None:
        reason = Reason.AUDIENCE if client_id else Reason.MISSING_CLAIM
        why = f"aud does not name {resource_url}" if client_id else "no client_id and no sub"
        seen = Seen("token", token.issuer, None, None, token.client_id)
        refusal = TokenRefused(InvalidTokenError(reason), seen, detail=why)
        if events is None:
            log_event(refusal)
        elif events.refused:
            events.emit(refusal)
        return None
    claims = _thaw(token.claims)
    claims.setdefault("iss", token.issuer)
    return model(
        token=raw,
        client_id=client_id,
        scopes=sorted(token.scopes),
        expires_at=None if token.expires_at is None else int(token.expires_at),
        resource=resource_url,
        subject=token.subject,
        claims=claims,
    )


def _thaw(value: Any) -> Any:
    # Our claims are read-only (mapping proxies, tuples); the SDK's model holds plain JSON.
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


class BearerGuardVerifier:
    """The SDK's `TokenVerifier` protocol, backed by a `ResourceServer`.

    A refused token (`BearerError`) is `None`, which the SDK answers with 401 `invalid_token`.
    An unreachable authorization server (`UpstreamUnavailableError`) is raised, not disguised
    as an invalid token: the SDK lets it through to Starlette, which answers 500, or 503 with
    `UpstreamUnavailableMiddleware` added to the app.

    Example::

        verifier = BearerGuardVerifier.for_resource(ISSUER, "https://mcp.example.com/mcp")
        server = MCPServer("orders", token_verifier=verifier,
                           auth=verifier.auth_settings(required_scopes=["orders.read"]))
    """

    def __init__(
        self, server: ResourceServer, *, resource_url: str, issuer_url: str | None = None
    ) -> None:
        self.server = server
        self.resource_url = resource_url
        self.issuer_url = issuer_url

    @classmethod
    def for_resource(
        cls,
        issuer_url: str,
        resource_url: str,
        *,
        introspection: Introspection | None = None,
        dpop: DPoPMode | DPoPPolicy = "off",
        **issuer_options: Any,
    ) -> BearerGuardVerifier:
        """A verifier whose server expects `resource_url` as `aud` (see `resource_server`)."""
        server = resource_server(
            issuer_url, resource_url, introspection=introspection, dpop=dpop, **issuer_options
        )
        return cls(server, resource_url=resource_url, issuer_url=issuer_url)

    async def verify_token(self, token: str) -> SDKAccessToken | None:
        return await verified(self.server, token, self.resource_url, SDKAccessToken)

    def auth_settings(
        self, *, required_scopes: Sequence[str] | None = None, **settings: Any
    ) -> AuthSettings:
        """The SDK's `AuthSettings` for this verifier: issuer, resource, and resource checks on.

        The issuer advertised in the RFC 9728 metadata is `issuer_url`, else the server's only
        issuer. `settings` are passed through (e.g. `service_documentation_url`).
        """
        issuer_url = self.issuer_url or _only_issuer(self.server)
        return AuthSettings(
            issuer_url=http_url(issuer_url),
            resource_server_url=http_url(self.resource_url),
            required_scopes=None
            if required_scopes is None
            else list(strings(required_scopes, "required_scopes")),
            validate_token_resource=True,
            **settings,
        )


def _only_issuer(server: ResourceServer) -> str:
    if len(server.issuers) != 1:
        raise ConfigurationError("several or no issuers: pass issuer_url to the verifier")
    return server.issuers[0].issuer


class UpstreamUnavailableMiddleware:
    """Answer 503 (with `Retry-After` when known) when the authorization server is down.

    The SDK's bearer backend lets the verifier's `UpstreamUnavailableError` escape, and
    Starlette would answer 500 and log a traceback. Add this outside the SDK's middleware:
    `app.add_middleware(UpstreamUnavailableMiddleware)` (FastMCP's provider does it for you).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except UpstreamUnavailableError as exc:
            if started or scope["type"] != "http":
                raise
            await refuse(scope, send, challenge_for(exc))  # the one 503; the server logged why
