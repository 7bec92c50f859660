"""Decoded JSON made read-only, and what every layer reads of a token's claims: the bound on
nesting, the client id. Pure, at the bottom of the import graph (`_jose` parses with these bounds,
`_token` keeps what they make)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

# How deeply decoded JSON may nest, the outermost object counting 1: tokens, JWKS, metadata and
# introspection answers nest 2 to 5 deep. The one bound of the JSON parser (_jose, which refuses
# deeper JSON) and of `freeze` (which cannot go deeper). 64 is System.Text.Json's default too.
MAX_JSON_DEPTH = 64

# Where RFC 9068 and the issuers our users run put the client's id, in order of preference:
# RFC 9068 `client_id`, then `azp` (Entra v2, Auth0), `appid` (Entra v1), `cid` (Okta).
CLIENT_ID_CLAIMS = ("client_id", "azp", "appid", "cid")


def freeze(value: Any, *, flat: bool = False) -> Any:
    """A read-only deep copy of decoded JSON: objects become mapping proxies, arrays tuples.

    `flat=True` says `value` is an object of scalars only (the parser can tell from the JSON
    text), so it is copied in one step without looking at its members. JSON nested deeper than
    the parser accepts (`MAX_JSON_DEPTH`) is a `ValueError`, never a `RecursionError`.
    """
    if flat:
        return MappingProxyType(value.copy())
    return _freeze(value)


def _level(deeper: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The freezer of one nesting level: `deeper` freezes the containers inside it."""

    def frozen(value: Any) -> Any:
        if isinstance(value, dict):
            if _SCALARS.issuperset(map(type, value.values())):
                return MappingProxyType(value.copy())  # the common flat object: one C-level pass
            return MappingProxyType(
                {k: deeper(v) if isinstance(v, _CONTAINERS) else v for k, v in value.items()}
            )
        if isinstance(value, list):
            return tuple(deeper(v) if isinstance(v, _CONTAINERS) else v for v in value)
        return value

    return frozen


def _deeper_than_allowed(value: Any) -> Any:
    raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} deep")


_CONTAINERS = (dict, list)
_SCALARS = frozenset({str, int, float, bool, type(None)})
# One freezer per nesting level, each calling the next, the last `_deeper_than_allowed`: it
# never goes deeper than the parser lets JSON nest, at no cost per call (a depth argument
# checked on every call cost ~20% of freezing a token with a few arrays).
_freeze: Callable[[Any], Any] = _deeper_than_allowed
for _ in range(MAX_JSON_DEPTH):
    _freeze = _level(_freeze)


def client_id_of(claims: Mapping[str, Any], names: Sequence[str] = CLIENT_ID_CLAIMS) -> str | None:
    """The client's id: the first of the claims `names` that holds a string (or a number)."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # some issuers send a numeric `azp`; an id, never a grant
    return None
