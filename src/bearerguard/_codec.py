"""What the caches put in a store, as bytes, and how they read it back: in this one place.

Three kinds of value: an accepted token (`AccessToken`, an introspection answer), a role's
privileges (`frozenset[str]`) and a refusal (a `Reason`, the negative cache, with what the answer
named for the log line, `Seen`, its values clipped as the log shows them). Each is compact
JSON behind a version tag, with the time it may be believed until (`until`, on the caller's
clock, the wall clock for tokens):

    b"bg1" + b'{"k":"t","u":1700000060.0,"i":"https://as","s":"svc","c":"c1",...}'

`decode` believes nothing: bytes that are not exactly what `encode` writes today (garbage, a
truncated value, another version after an upgrade, a value past its `until`, too large, too
deeply nested, a member of the wrong type) are a miss, `None`, and never an exception. `encode`
raises `ValueError` for a value it cannot carry (a claim that is not JSON, a non-finite time, a
result over `MAX_VALUE_BYTES`): the caller then does not cache it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ._errors import Reason, Seen
from ._jose import json_object
from ._redact import clip
from ._token import MAX_JSON_DEPTH, AccessToken, freeze, issued

VERSION = b"bg1"
# Introspection answers are a few hundred bytes; an AS that puts more into one is not cached.
MAX_VALUE_BYTES = 64 * 1024
# How deeply claims may nest (the claims object counting 1): the shared JSON bound, less the
# value's own document around them, so that `json_object` bounds what `decode` reads.
MAX_DEPTH = MAX_JSON_DEPTH - 1

_SOURCES = frozenset({"jwt", "introspection"})


Value = AccessToken | frozenset[str] | Reason | tuple[Reason, Seen | None]


def encode(value: Value, until: float) -> bytes:
    """`value` as bytes, believed until `until`. Raises `ValueError` if it cannot be carried.

    A refusal is a `Reason`, or a `(Reason, Seen)` pair: the `Seen` is kept clipped (`clip`).
    """
    if not math.isfinite(until):
        raise ValueError("until must be finite")
    if isinstance(value, AccessToken) and _depth(value.claims) > MAX_DEPTH:
        raise ValueError(f"claims nested more than {MAX_DEPTH} deep")
    document: dict[str, Any]
    if isinstance(value, AccessToken):
        document = {
            "k": "t",
            "u": until,
            "i": value.issuer,
            "s": value.subject,
            "c": value.client_id,
            "p": sorted(value.scopes),
            "x": value.expires_at,
            "o": value.source,
            "m": value.claims,
        }
    elif isinstance(value, Reason):
        document = {"k": "r", "u": until, "r": value.name}
    elif isinstance(value, tuple):
        reason, seen = value
        document = {"k": "r", "u": until, "r": reason.name}
        if seen is not None:
            document["n"] = [clip(seen.source), clip(seen.issuer), clip(seen.client_id)]
    else:
        document = {"k": "p", "u": until, "p": sorted(value)}
    try:
        text = json.dumps(
            document, separators=(",", ":"), allow_nan=False, default=_plain, check_circular=True
        )
    except (TypeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {type(exc).__name__}") from exc
    data = VERSION + text.encode("ascii")  # ensure_ascii: lone surrogates survive as escapes
    if len(data) > MAX_VALUE_BYTES:
        raise ValueError(f"more than {MAX_VALUE_BYTES} bytes")
    return data


def _plain(value: object) -> object:
    if isinstance(value, Mapping):  # read-only claims (mapping proxies)
        return dict(value)
    raise TypeError(type(value).__name__)


Decoded = AccessToken | frozenset[str] | tuple[Reason, Seen | None]


def decode(data: object, now: float) -> AccessToken | frozenset[str] | Reason | None:
    """The value `data` holds if it is one `encode` wrote and `now` is before its `until`."""
    entry = decode_entry(data, now)
    if entry is None:
        return None
    value = entry[0]
    return value[0] if isinstance(value, tuple) else value


def decode_entry(data: object, now: float) -> tuple[Decoded, float] | None:
    """The value `data` holds and its `until` (a refusal as a `(Reason, Seen | None)` pair)."""
    try:
        return _decode(data, now)
    except (ValueError, TypeError, KeyError, RecursionError):  # belt and braces: a miss
        return None


def decode_token(data: object, now: float) -> AccessToken | None:
    value = decode(data, now)
    return value if isinstance(value, AccessToken) else None


def decode_privileges(data: object, now: float) -> frozenset[str] | None:
    value = decode(data, now)
    return value if isinstance(value, frozenset) else None


def decode_refusal(data: object, now: float) -> Reason | None:
    value = decode(data, now)
    return value if isinstance(value, Reason) else None


def _decode(data: object, now: float) -> tuple[Decoded, float] | None:
    if (
        not isinstance(data, bytes)
        or len(data) > MAX_VALUE_BYTES
        or not data.startswith(VERSION)
        or data[len(VERSION) : len(VERSION) + 1] != b"{"
    ):
        return None
    document = json_object(data[len(VERSION) :])
    until = document.get("u")
    if not _is_number(until) or not now < until:  # type: ignore[operator]
        return None
    kind = document.get("k")
    value: Decoded | None = None
    if kind == "t":
        value = _token(document)
    elif kind == "p":
        value = _strings(document.get("p"))
    elif kind == "r":
        value = _refusal(document)
    return None if value is None else (value, float(until))  # type: ignore[arg-type]


def _refusal(document: dict[str, Any]) -> tuple[Reason, Seen | None] | None:
    name, named = document.get("r"), document.get("n")
    reason = Reason.__members__.get(name) if type(name) is str else None
    if reason is None:
        return None
    if named is None:
        return reason, None
    if (
        type(named) is not list
        or len(named) != 3
        or not all(item is None or type(item) is str for item in named)
        or named[0] is None
    ):
        return None
    source, issuer, client_id = named
    return reason, Seen(source, issuer, None, None, client_id)


def _token(document: dict[str, Any]) -> AccessToken | None:
    issuer, subject, client_id = document.get("i"), document.get("s"), document.get("c")
    expires_at, source, claims = document.get("x"), document.get("o"), document.get("m")
    scopes = _strings(document.get("p"))
    if (
        type(issuer) is not str
        or not (subject is None or type(subject) is str)
        or not (client_id is None or type(client_id) is str)
        or not (expires_at is None or _is_number(expires_at))
        or source not in _SOURCES
        or type(claims) is not dict
        or scopes is None  # claims: no deeper than MAX_DEPTH, or json_object refused them
    ):
        return None
    return issued(
        issuer=issuer,
        subject=subject,
        client_id=client_id,
        scopes=scopes,
        claims=freeze(claims),
        expires_at=None if expires_at is None else float(expires_at),
        source=source,
    )


def _strings(value: object) -> frozenset[str] | None:
    if type(value) is not list or not all(type(item) is str for item in value):
        return None
    return frozenset(value)


def _is_number(value: object) -> bool:
    try:
        return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float: JSON puts no bound on digits
        return False


def _depth(value: object) -> int:
    """How deeply `value` nests (a scalar 0, an empty or flat container 1); iterative."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        pending.extend((child, level + 1) for child in children)
    return deepest
