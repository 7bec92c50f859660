"""The property tests' oracle: the standard library's JSON and the rules the README states.

Nothing here imports bearerguard: a bug shared by the code and its oracle would go unseen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 64  # README: JSON nested deeper than this is refused where it is parsed
LEEWAY = 30


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({name for name, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member name")
    return dict(pairs)


def _constant(name: str) -> Any:
    raise ValueError(name)


def strict_json(raw: bytes) -> Any:
    """RFC 8259 as RFC 7515/7519 want it: UTF-8, unique names, no NaN or Infinity."""
    return json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_constant)


def json_object(raw: bytes) -> dict[str, Any] | None:
    """`raw` as a JSON object nested at most MAX_DEPTH deep, else None."""
    try:
        value = strict_json(raw)
    except (ValueError, RecursionError):  # not JSON, or deeper than this stack reads
        return None
    return value if isinstance(value, dict) and depth(value) <= MAX_DEPTH else None


def depth(value: Any) -> int:
    """How many containers deep `value` nests (without recursion: it may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            members = item.values() if isinstance(item, dict) else item
            stack.extend((member, level + 1) for member in members)
    return deepest


def number(value: Any) -> bool:
    """A JSON number that is a time: not a boolean, finite, and within a float's range."""
    if type(value) is int:
        return value.bit_length() < 1024
    return type(value) is float and math.isfinite(value)


def times_ok(claims: Mapping[str, Any], now: float) -> bool:
    """`exp`, `nbf` and `iat`, where present, are numbers that allow use at `now`."""
    times = {name: claims[name] for name in ("exp", "nbf", "iat") if name in claims}
    if not all(number(value) for value in times.values()):
        return False
    if now >= times.get("exp", math.inf) + LEEWAY:
        return False
    return bool(now + LEEWAY >= max(times.get("nbf", -math.inf), times.get("iat", -math.inf)))


def audiences(claims: Mapping[str, Any]) -> list[str] | None:
    """`aud` as a list of strings (RFC 7519 §4.1.3), or None if it is of another type."""
    aud = claims.get("aud")
    found = [aud] if type(aud) is str else aud
    if isinstance(found, list) and all(type(item) is str for item in found):
        return found
    return None


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str] | None:
    """The scopes of `scope` and `scp`, None if either has a type no scope claim may have."""
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found |= set(value.split())
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            found |= set(value)
        elif value is not None:
            return None
    return frozenset(found)


def thawed(value: Any) -> Any:
    """Read-only claims (mapping proxies, tuples) as the JSON values they were read from."""
    if isinstance(value, Mapping):
        return {name: thawed(item) for name, item in value.items()}
    if isinstance(value, tuple):
        return [thawed(item) for item in value]
    return value
