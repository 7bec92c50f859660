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
from ._rolelookup import HTTPRoleLookup
from ._roles import RoleResolver
from ._validate import strings

__all__ = [
    "auth0",
    "cognito",
    "entra_id",
    "jamf_pro",
    "jamf_pro_roles",
    "keycloak",
    "oidc",
    "okta",
]

Audience = str | Sequence[str]

# Entra ID clouds: the v2.0 authority (login host) and the v1.0 token issuer (STS host).
_ENTRA_CLOUDS = {
    "global": ("https://login.microsoftonline.com", "https://sts.windows.net"),
    "usgov": ("https://login.microsoftonline.us", "https://sts.windows.net"),
    "china": ("https://login.partner.microsoftonline.cn", "https://sts.chinacloudapi.cn"),
}
_ENTRA_AUTHORITIES = frozenset({"common", "organizations", "consumers"})
_ENTRA_VERSIONS = ("v2", "v1")
# Fields that name one issuer: an override of one of them needs a single version.
_PER_ISSUER = frozenset({"issuer", "discovery_url"})


def _host(domain: str) -> str:
    return domain.removeprefix("https://").rstrip("/")


def oidc(issuer: str, audience: Audience | None, **overrides: Any) -> Issuer:
    """Any OpenID Connect or RFC 8414 issuer: keys found through its discovery document."""
    return Issuer(issuer=issuer, audience=audience, **overrides)


def entra_id(
    tenant: str,
    audience: Audience,
    *,
    cloud: str = "global",
    versions: Sequence[str] = _ENTRA_VERSIONS,
    app_permissions_only: bool = False,
    **overrides: Any,
) -> list[Issuer]:
    """Microsoft Entra ID: a tenant's v2.0 and v1.0 issuers, app permissions from `roles`.

    Client-credentials tokens carry application permissions in `roles`; delegated tokens carry
    `scp`: both are read, unless `app_permissions_only=True` (an API only machines call), which
    reads `roles` alone, so a delegated token whose `scp` holds the same name grants nothing.
    `audience` lists what `aud` may be: v2 tokens name the API's client id (a GUID), v1 tokens
    its application ID URI (`api://…`), so pass both. `tenant` is the tenant id (a GUID); keys
    come from each issuer's discovery document. `cloud` is "global", "usgov" (Azure Government,
    login.microsoftonline.us) or "china" (operated by 21Vianet, login.partner.microsoftonline.cn).
    `versions` picks the issuers ("v2", "v1"). The client's id is `azp` (v2) or `appid` (v1).
    `overrides` replace any `Issuer` field in each issuer (both versions share the tenant's
    keys, so one `jwks_uri=` serves both); `issuer=` and `discovery_url=` name one issuer, so
    they need a single version (`versions=["v2"]`).
    """
    if not isinstance(tenant, str) or tenant in _ENTRA_AUTHORITIES or not tenant or "/" in tenant:
        raise ConfigurationError(
            f"entra_id needs a tenant id, not {tenant!r}: multi-tenant authorities have no "
            "single issuer to check",
            field="tenant",
        )
    if cloud not in _ENTRA_CLOUDS:
        raise ConfigurationError(
            f"entra_id cloud must be one of {sorted(_ENTRA_CLOUDS)}, not {cloud!r}", field="cloud"
        )
    chosen = strings(versions, "versions", one=True)
    if not chosen or not set(chosen) <= set(_ENTRA_VERSIONS) or len(set(chosen)) != len(chosen):
        raise ConfigurationError(
            f"entra_id versions must be some of {_ENTRA_VERSIONS}, not {versions!r}",
            field="versions",
        )
    if len(chosen) > 1 and (named := sorted(_PER_ISSUER & overrides.keys())):
        raise ConfigurationError(
            f"entra_id: {', '.join(named)} names one issuer; pass versions=['v2'] or ['v1']",
            field=named[0],
        )
    login, sts = _ENTRA_CLOUDS[cloud]
    per_version = {
        "v2": (f"{login}/{tenant}/v2.0", f"{login}/{tenant}/v2.0/.well-known/openid-configuration"),
        "v1": (f"{sts}/{tenant}/", f"{login}/{tenant}/.well-known/openid-configuration"),
    }
    claims = ("roles",) if app_permissions_only else ("roles", "scp")
    return [
        Issuer(
            **{
                "issuer": per_version[version][0],
                "audience": audience,
                "discovery_url": per_version[version][1],
                "scope_claims": claims,
                "client_id_claims": ("azp", "appid"),
            }
            | overrides
        )
        for version in chosen
    ]


def auth0(domain: str, audience: Audience, **overrides: Any) -> Issuer:
    """Auth0: issuer `https://{domain}/` (with the slash), RBAC permissions in `permissions`."""
    issuer = f"https://{_host(domain)}/"
    options: dict[str, Any] = {
        "jwks_uri": f"{issuer}.well-known/jwks.json",
        "scope_claims": ("scope", "permissions"),
        "client_id_claims": ("client_id", "azp"),
    }
    return Issuer(issuer=issuer, audience=audience, **(options | overrides))


def okta(domain: str, audience: Audience, *, server: str = "default", **overrides: Any) -> Issuer:
    """Okta custom authorization server `server`: scopes in `scp` (an array)."""
    issuer = f"https://{_host(domain)}/oauth2/{server}"
    options: dict[str, Any] = {
        "jwks_uri": f"{issuer}/v1/keys",
        "scope_claims": ("scp",),
        "client_id_claims": ("cid",),
    }
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
        "client_id_claims": ("azp", "client_id"),
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
        "client_id_claims": ("client_id",),
    }
    return Issuer(issuer=issuer, audience=None, **(options | overrides))


def jamf_pro(
    server: str, client_ids: str | Sequence[str], roles: RoleResolver, **overrides: Any
) -> Issuer:
    """Jamf Pro API clients: `aud` is the client id, `scope` an array of `api-role:<id>`.

    `client_ids` are the API clients allowed to call (each token's `aud` is its own client
    id); `roles` resolves role ids to privileges (`jamf_pro_roles` asks the server). The
    client's id is `sub` (equal to `aud`). `iss` is the server URL exactly as the tokens carry
    it; for a plain-http server pass `allow_http=True`.
    """
    options: dict[str, Any] = {
        "scope_claims": ("scope",),
        "client_id_claims": ("sub",),  # `sub` (= `aud`) is the API client's id
        "roles": roles,
    }
    audience = strings(client_ids, "client_ids", one=True)
    return Issuer(issuer=server, audience=audience, **(options | overrides))


def jamf_pro_roles(
    server: str,
    client_id: str,
    client_secret: str,
    *,
    allow_http: bool = False,
    **options: Any,
) -> RoleResolver:
    """A `RoleResolver` asking Jamf Pro for each role's privileges (`GET /api/v1/api-roles/{id}`).

    It signs in as its own API client (`client_id`, `client_secret`; a client with the "Read API
    Roles" privilege) at `POST /api/oauth/token`. A role Jamf does not know (404) grants nothing;
    any other failure is a 503. `options` go to `RoleResolver` (`ttl`, `timeout`...).
    """
    base = server.rstrip("/")
    lookup = HTTPRoleLookup(
        f"{base}/api/v1/api-roles/{{id}}",
        token_endpoint=f"{base}/api/oauth/token",
        client_id=client_id,
        client_secret=client_secret,
        allow_http=allow_http,
    )
    return RoleResolver(lookup, **options)
