"""base64url and JSON as JOSE needs them, decoded strictly: one canonical unpadded base64url
form (RFC 7515 §2), UTF-8 JSON objects with no duplicate member names, no NaN or Infinity, and
nesting bounded by `MAX_JSON_DEPTH` (RFC 8725 §3). The primitives of `_jose` (the JWS parser),
`_dpop` (proofs) and the documents the flows read; and `payload_claims`, which `AccessToken`
uses to decode a verified token's claims when first read. No error types of the library here:
everything malformed is a `Malformed` (a `ValueError`), which the callers turn into refusals.
"""

from __future__ import annotations

import binascii
import json
import sys
from collections.abc import Callable
from itertools import compress
from json.scanner import make_scanner
from typing import Any

from ._frozen import MAX_JSON_DEPTH, freeze

# base64url to standard base64, and the three bytes of standard base64 that base64url lacks; one
# C-speed `bytes.translate` maps the one and drops the others, so a changed length means the
# segment was not base64url. (`str.translate` and a regex both cost ~10 ns per character.)
TO_STANDARD = bytes.maketrans(b"-_", b"+/")
NOT_BASE64URL = b"+/="
_PADDING = (b"", b"", b"==", b"=")  # by length % 4; a length of 1 % 4 is refused before
# The last character of an unpadded segment carries unused bits that must be zero (RFC 4648 §3.5),
# or two different strings would decode to the same bytes.
_CANONICAL_LAST = {
    2: frozenset(b"AQgw"),  # 2 leftover chars: 4 unused bits
    3: frozenset(b"AEIMQUYcgkosw048"),  # 3 leftover chars: 2 unused bits
}
# JSON nested deeper than MAX_JSON_DEPTH (see _frozen, whose freezer has the same bound) is
# refused where it is parsed, so that all code that walks decoded JSON recursively (freezing
# claims, `bearerguard check`, logging a claim) stays far below the recursion limit.
_TOO_DEEP = f"JSON nested more than {MAX_JSON_DEPTH} deep"


class Malformed(ValueError):
    """Not canonical base64url, or not a JSON object as JOSE accepts one (the message says
    which, for logs and `bearerguard check`, never for the client)."""


def segment(standard: bytes) -> bytes:
    """Decode one segment already mapped to standard base64 (see `parse`); `Malformed` unless
    it is canonical and unpadded."""
    leftover = len(standard) % 4
    if leftover == 1 or (leftover and standard[-1] not in _CANONICAL_LAST[leftover]):
        raise Malformed("non-canonical base64url")
    try:
        # strict_mode refuses every byte outside the alphabet (space, controls, non-ASCII).
        return binascii.a2b_base64(standard + _PADDING[leftover], strict_mode=True)
    except binascii.Error as exc:
        raise Malformed("invalid base64url") from exc


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise Malformed("duplicate member name")  # RFC 7515 §5.2 step 4, RFC 7519 §4
    return obj


def _constant(name: str) -> Any:
    raise Malformed(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)
# What `raw_decode` calls, without its whitespace handling. (typeshed types the C scanner's
# argument as the scanner class itself; it takes the decoder whose settings it copies.)
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(_DECODER)  # type: ignore[arg-type]


# For flat objects (see `_flat_object`): the dict built in C, NaN and Infinity still refused.
_FLAT_DECODER = json.JSONDecoder(parse_constant=_constant)
_FLAT_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(_FLAT_DECODER)  # type: ignore[arg-type]
# For bytes `parse` accepted before: the same decoder without the hooks (see `payload_claims`).
_PLAIN_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def json_object(raw: bytes) -> dict[str, Any]:
    """Decode UTF-8 JSON that must be an object with unique member names, nested at most
    `MAX_JSON_DEPTH` deep. Whatever the bytes, the only exception is a `ValueError`."""
    return json_object_flat(raw)[0]


def json_object_flat(raw: bytes) -> tuple[dict[str, Any], bool]:
    """`json_object`, and whether the object is flat: no arrays and no nested objects."""
    try:
        text = raw.decode("utf-8")
        # No "[" and no "{" but the first: no arrays or nested objects (a "[" or "{" inside a
        # string only makes this False, never wrongly True). Two C-speed searches; see `freeze`.
        flat = "[" not in text and text.find("{", 1) < 0
        value = _flat_object(text) if flat else None
        if value is None:
            # The C scanner alone reads the usual object with no surrounding whitespace;
            # anything else (whitespace, not JSON, trailing data) goes through the full decoder
            # to be accepted or refused as before. This skips two regex calls per segment.
            try:
                value, end = _SCAN(text, 0)
            except StopIteration:
                end = -1
            if end != len(text):
                value = _DECODER.decode(text)
    except Malformed:
        raise  # from the hooks: a duplicate member name, NaN or Infinity
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Malformed("invalid JSON") from exc
    except ValueError as exc:
        # The one other ValueError of the decoder: an integer of more digits than the
        # interpreter converts (`sys.get_int_max_str_digits()`, 4300 by default).
        raise Malformed("invalid JSON: a number with too many digits") from exc
    except RecursionError as exc:  # nested deeper than the stack allows: deeper than the bound
        raise Malformed(_TOO_DEEP) from exc
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    # Only JSON that is not flat can be too deep, and only if it has more brackets than the
    # bound (a C-speed count, ~0.5 ns per character); then the decoded value itself is measured.
    if not flat and text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise Malformed(_TOO_DEEP)
    return value, flat


def _flat_object(text: str) -> dict[str, Any] | None:
    """A flat object (`text` has no "[", and no "{" but its first character) decoded with its
    dict built in C, when it provably has no duplicate member name; None: decode it strictly.

    The proof: a flat object of n members has exactly n - 1 commas between them, and commas
    inside strings only add to the count (an escape never removes a comma from the text). A
    duplicate name would make the text hold at least one member more than the dict, so at
    least as many commas as the dict has members: fewer proves there is none. Tokens rarely put
    commas in their values; when they do, the strict decoder decides.
    """
    try:
        value, end = _FLAT_SCAN(text, 0)
    except StopIteration:
        return None
    if end != len(text) or type(value) is not dict or text.count(",") != len(value) - 1:
        return None
    return value


_IS_CONTAINER = frozenset({dict, list}).__contains__  # decoded JSON: exactly these two types


def _too_deep(value: dict[str, Any]) -> bool:
    """Does decoded JSON nest more than `MAX_JSON_DEPTH` deep? Level by level, no recursion."""
    level: list[Any] = [value]
    for _ in range(MAX_JSON_DEPTH):
        below: list[Any] = []
        for container in level:
            members = container.values() if type(container) is dict else container
            below += compress(members, map(_IS_CONTAINER, map(type, members)))
        if not below:
            return False
        level = below
    return True


_intern = sys.intern  # not immortal: gone with the last token that holds it
_SHARED = 256  # characters: longer strings are rarely repeated, and are kept as decoded


def payload_claims(token: str) -> Any:
    """The claims of a JWT that `parse` accepted, frozen as the request path keeps them
    (`AccessToken.claims`, decoded when first read).

    The bytes are those `parse` decoded and the checks read, so the strict hooks have nothing
    left to find (no duplicate member, no NaN, nothing too deep or too long): the plain C
    decoder gives the same object, at about half the cost of `parse`'s.
    """
    start = token.index(".") + 1
    payload = token[start : token.index(".", start)].encode("ascii")
    text = segment(payload.translate(TO_STANDARD, NOT_BASE64URL)).decode("utf-8")
    try:
        claims, end = _PLAIN_SCAN(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):  # whitespace around the object, which `parse` allowed too
        claims = json.loads(text)
    # One string per claim name, and per short value, for all the cached tokens that read them:
    # the tokens of a client repeat every claim but `jti`, `iat` and `exp`.
    claims = {
        _intern(name): _intern(value) if type(value) is str and len(value) <= _SHARED else value
        for name, value in claims.items()
    }
    return freeze(claims, flat="[" not in text and text.find("{", 1) < 0)
