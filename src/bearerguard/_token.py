"""The access token a request was authenticated with: immutable, with read-only claims."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

# Where RFC 9068 and the issuers our users run put the client's id, in order of preference:
# RFC 9068 `client_id`, then `azp` (Entra v2, Auth0), `appid` (Entra v1), `cid` (Okta).
CLIENT_ID_CLAIMS = ("client_id", "azp", "appid", "cid")


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A verified access token. `claims` is read-only; JSON arrays in it are tuples."""

    issuer: str
    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(repr=False)
    expires_at: float | None
    source: Literal["jwt", "introspection"] = "jwt"

    def has_scopes(self, *scopes: str) -> bool:
        """True if the token carries every one of `scopes` (exact, case-sensitive)."""
        return self.scopes.issuperset(scopes)


def freeze(value: Any) -> Any:
    """A read-only deep copy of decoded JSON: objects become mapping proxies, arrays tuples."""
    if isinstance(value, dict):
        if _SCALARS.issuperset(map(type, value.values())):
            return MappingProxyType(value.copy())  # the common flat object: one C-level pass
        return MappingProxyType(
            {k: freeze(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()}
        )
    if isinstance(value, list):
        return tuple(freeze(v) if isinstance(v, _CONTAINERS) else v for v in value)
    return value


_CONTAINERS = (dict, list)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def client_id_of(claims: Mapping[str, Any]) -> str | None:
    for name in CLIENT_ID_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # some issuers send a numeric `azp`; an id, never a grant
    return None
