"""Presets: the `Issuer` configuration of the authorization servers our users run, filled in.

Each function returns ordinary `Issuer` values (a list where one system has several issuers)
that could be written by hand; nothing here is special-cased in the core. Keyword `overrides`
replace any field (a `jwks_uri`, `algorithms`, `leeway`...). Where the claims come from is in
the README's "Scopes and roles" table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._config import Issuer
from ._errors import ConfigurationError
from ._roles import RoleResolver
from ._validate import strings

__all__ = ["auth0", "cognito", "entra_id", "jamf_pro", "keycloak", "oidc", "okta"]

Audience = str | Sequence[str]

_MICROSOFT = "https://login.microsoftonline.com"
_ENTRA_AUTHORITIES = frozenset({"common", "organizations", "consumers"})


def _host(domain: str) -> str:
    return domain.removeprefix("https://").rstrip("/")


def oidc(issuer: str, audience: Audience | None, **overrides: Any) -> Issuer:
    """Any OpenID Connect or RFC 8414 issuer: keys found through its discovery document."""
    return Issuer(issuer=issuer, audience=audience, **overrides)


def entra_id(tenant: str, audience: Audience, **overrides: Any) -> list[Issuer]:
    """Microsoft Entra ID: a tenant's v2.0 and v1.0 issuers, app permissions from `roles`.

    Client-credentials tokens carry application permissions in `roles`; delegated tokens carry
    `scp`: both are read. `audience` lists what `aud` may be: v2 tokens name the API's client
    id (a GUID), v1 tokens its application ID URI (`api://…`), so pass both. `tenant` is the
    tenant id (a GUID); keys come from each issuer's discovery document.
    """
    if tenant in _ENTRA_AUTHORITIES or not tenant or "/" in tenant:
        raise ConfigurationError(
            f"entra_id needs a tenant id, not {tenant!r}: multi-tenant authorities have no "
            "single issuer to check",
            field="tenant",
        )
    options: dict[str, Any] = {"scope_claims": ("roles", "scp")} | overrides
    return [
        Issuer(
            issuer=f"{_MICROSOFT}/{tenant}/v2.0",
            audience=audience,
            discovery_url=f"{_MICROSOFT}/{tenant}/v2.0/.well-known/openid-configuration",
            **options,
        ),
        Issuer(
            issuer=f"https://sts.windows.net/{tenant}/",
            audience=audience,
            discovery_url=f"{_MICROSOFT}/{tenant}/.well-known/openid-configuration",
            **options,
        ),
    ]


def auth0(domain: str, audience: Audience, **overrides: Any) -> Issuer:
    """Auth0: issuer `https://{domain}/` (with the slash), RBAC permissions in `permissions`."""
    issuer = f"https://{_host(domain)}/"
    options: dict[str, Any] = {
        "jwks_uri": f"{issuer}.well-known/jwks.json",
        "scope_claims": ("scope", "permissions"),
    }
    return Issuer(issuer=issuer, audience=audience, **(options | overrides))


def okta(domain: str, audience: Audience, *, server: str = "default", **overrides: Any) -> Issuer:
    """Okta custom authorization server `server`: scopes in `scp` (an array)."""
    issuer = f"https://{_host(domain)}/oauth2/{server}"
    options: dict[str, Any] = {"jwks_uri": f"{issuer}/v1/keys", "scope_claims": ("scp",)}
    return Issuer(issuer=issuer, audience=audience, **(options | overrides))


def keycloak(
    base_url: str,
    realm: str,
    audience: Audience,
    *,
    client_roles: str | None = None,
    **overrides: Any,
) -> Issuer:
    """Keycloak realm `realm`: `scope` and the realm roles (`realm_access.roles`).

    `client_roles` also reads the roles of that client (`resource_access.<client>.roles`).
    Keycloak puts `account` in `aud` unless an audience mapper adds your API's client id:
    pass the audience your realm actually issues.
    """
    issuer = f"{base_url.rstrip('/')}/realms/{realm}"
    claims = ["scope", "realm_access.roles"]
    if client_roles is not None:
        claims.append(f"resource_access.{client_roles}.roles")
    options: dict[str, Any] = {
        "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
        "scope_claims": tuple(claims),
    }
    return Issuer(issuer=issuer, audience=audience, **(options | overrides))


def cognito(
    region: str, user_pool_id: str, client_ids: str | Sequence[str], **overrides: Any
) -> Issuer:
    """AWS Cognito user pool access tokens: no `aud`, so `client_id` and `token_use` are checked.

    Only access tokens of the listed app clients are accepted (`token_use: "access"`); ID
    tokens, which do carry `aud`, are refused.
    """
    issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
    clients = strings(client_ids, "client_ids", one=True)
    options: dict[str, Any] = {
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "claim_values": {"client_id": clients, "token_use": "access"},
        "scope_claims": ("scope",),
    }
    return Issuer(issuer=issuer, audience=None, **(options | overrides))


def jamf_pro(
    server: str, client_ids: str | Sequence[str], roles: RoleResolver, **overrides: Any
) -> Issuer:
    """Jamf Pro API clients: `aud` is the client id, `scope` an array of `api-role:<id>`.

    `client_ids` are the API clients allowed to call (each token's `aud` is its own client
    id); `roles` resolves role ids to privileges (see `examples/jamf_roles.py`). `iss` is the
    server URL exactly as the tokens carry it; for a plain-http server pass `allow_http=True`.
    """
    options: dict[str, Any] = {"scope_claims": ("scope",), "roles": roles}
    audience = strings(client_ids, "client_ids", one=True)
    return Issuer(issuer=server, audience=audience, **(options | overrides))
