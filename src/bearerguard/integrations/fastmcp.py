"""bearerguard as the token verifier and RFC 9728 auth provider of FastMCP (`fastmcp` 4.x).

The resource URL FastMCP publishes (its base URL plus the MCP path) is the `aud` tokens must
carry (RFC 8707, MCP authorization); a mismatch stops the app from being built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

try:
    from fastmcp.server.auth import AccessToken, RemoteAuthProvider, TokenVerifier
    from starlette.middleware import Middleware
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        'bearerguard.integrations.fastmcp needs FastMCP: pip install "bearerguard[fastmcp]"'
    ) from exc

from .. import ConfigurationError, DPoPPolicy, Introspection, ResourceServer
from .._sender import DPoPMode
from .._validate import strings
from .mcp import (
    DPoPMiddleware,
    UpstreamUnavailableMiddleware,
    http_url,
    resource_server,
    verified,
)

__all__ = ["BearerGuardAuth", "BearerGuardVerifier"]


def _answer_503(middleware: list[Middleware], verifier: BearerGuardVerifier) -> list[Middleware]:
    # Outside the SDK's AuthenticationMiddleware, which lets the verifier's exception escape
    # and reads only Bearer tokens (DPoP requests are judged whole before it: `DPoPMiddleware`).
    return [
        Middleware(UpstreamUnavailableMiddleware),
        Middleware(DPoPMiddleware, verifier=verifier),
        *middleware,
    ]


class BearerGuardVerifier(TokenVerifier):
    """FastMCP's `TokenVerifier`, backed by a `ResourceServer`; tokens must name `resource_url`.

    A refused token is `None` (FastMCP answers 401 `invalid_token`); an unreachable
    authorization server is raised and answered 503 by the middleware this verifier installs.
    """

    def __init__(
        self,
        server: ResourceServer,
        *,
        resource_url: str,
        required_scopes: Sequence[str] | None = None,
    ) -> None:
        scopes = () if required_scopes is None else strings(required_scopes, "required_scopes")
        super().__init__(required_scopes=list(scopes))
        self.server = server
        self.resource_url = resource_url

    async def verify_token(self, token: str) -> AccessToken | None:
        return await verified(self.server, token, self.resource_url, AccessToken)

    def get_middleware(self) -> list[Middleware]:
        return _answer_503(super().get_middleware(), self)


class BearerGuardAuth(RemoteAuthProvider):
    """A `RemoteAuthProvider`: bearerguard verification plus RFC 9728 metadata naming the AS.

    Example::

        auth = BearerGuardAuth.for_resource(ISSUER, "https://mcp.example.com/mcp",
                                            required_scopes=["orders.read"])
        app = FastMCP("orders", auth=auth).http_app()  # path "/mcp"
    """

    def __init__(
        self,
        verifier: BearerGuardVerifier,
        *,
        authorization_servers: Sequence[str],
        base_url: str | None = None,
        **options: Any,
    ) -> None:
        if base_url is None:  # the resource URL's origin; FastMCP appends the MCP path
            parts = urlsplit(verifier.resource_url)
            base_url = f"{parts.scheme}://{parts.netloc}"
        super().__init__(
            verifier,
            authorization_servers=[
                http_url(url) for url in strings(authorization_servers, "authorization_servers")
            ],
            base_url=base_url,
            **options,
        )
        self.verifier = verifier

    @classmethod
    def for_resource(
        cls,
        issuer_url: str,
        resource_url: str,
        *,
        required_scopes: Sequence[str] | None = None,
        introspection: Introspection | None = None,
        dpop: DPoPMode | DPoPPolicy = "off",
        **issuer_options: Any,
    ) -> BearerGuardAuth:
        """Verify tokens of `issuer_url` whose `aud` is `resource_url`, and advertise that AS.

        `issuer_options` go to `Issuer`, `dpop` to the server (DPoP-bound tokens, RFC 9449 and
        SEP-1932); see `bearerguard.integrations.mcp.resource_server`.
        """
        server = resource_server(
            issuer_url, resource_url, introspection=introspection, dpop=dpop, **issuer_options
        )
        verifier = BearerGuardVerifier(
            server, resource_url=resource_url, required_scopes=required_scopes
        )
        return cls(verifier, authorization_servers=[issuer_url])

    def set_mcp_path(self, mcp_path: str | None) -> None:
        super().set_mcp_path(mcp_path)
        served = str(self._resource_url)
        if served != self.verifier.resource_url:
            raise ConfigurationError(
                f"FastMCP serves the resource {served}, but tokens are checked for "
                f"{self.verifier.resource_url}: make the resource URL and the MCP path agree"
            )

    def get_middleware(self) -> list[Middleware]:
        return _answer_503(super().get_middleware(), self.verifier)
