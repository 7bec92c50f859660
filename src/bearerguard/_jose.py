"""Strict parsing of a JWS compact serialization (RFC 7515 §7.1, RFC 8725 §3).

Nothing here trusts the token: it splits, decodes and type-checks, so that the verifier can pick a
key and check a signature. The rules are strict on purpose: one canonical base64url form with no
padding, UTF-8 JSON objects with no duplicate member names and no NaN or Infinity, and no header
parameter that would let the token choose its own key or change how it is verified.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from itertools import compress
from json.scanner import make_scanner
from typing import Any, NamedTuple

from ._errors import InvalidTokenError, Reason, seen_in
from ._token import MAX_JSON_DEPTH

# base64url to standard base64, and the three bytes of standard base64 that base64url lacks; one
# C-speed `bytes.translate` maps the one and drops the others, so a changed length means the
# segment was not base64url. (`str.translate` and a regex both cost ~10 ns per character.)
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_NOT_BASE64URL = b"+/="
_PADDING = (b"", b"", b"==", b"=")  # by length % 4; a length of 1 % 4 is refused before
# The last character of an unpadded segment carries unused bits that must be zero (RFC 4648 §3.5),
# or two different strings would decode to the same bytes.
_CANONICAL_LAST = {
    2: frozenset(b"AQgw"),  # 2 leftover chars: 4 unused bits
    3: frozenset(b"AEIMQUYcgkosw048"),  # 3 leftover chars: 2 unused bits
}
# Header parameters that hand the token control over which key verifies it (RFC 8725 §3.10), or
# that change the payload encoding. None of them is ever honoured.
_REFUSED_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit", "b64", "zip", "enc"})
# JSON nested deeper than MAX_JSON_DEPTH (see _token, whose freezer has the same bound) is
# refused where it is parsed, so that all code that walks decoded JSON recursively (freezing
# claims, `bearerguard check`, logging a claim) stays far below the recursion limit.
_TOO_DEEP = f"JSON nested more than {MAX_JSON_DEPTH} deep"


class _Malformed(ValueError):
    pass


class UnverifiedJWT(NamedTuple):
    """A parsed, unverified JWS: only `alg`, `kid` and `iss` may be read before the check.

    A named tuple rather than a frozen dataclass: it is built once per token on the cold path,
    and a tuple is built several times faster.
    """

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    alg: str  # header["alg"], checked to be a string
    kid: str | None  # header["kid"] if present, checked to be a string
    flat: bool = False  # True: the claims hold only scalars (no arrays, no nested objects)


def _segment(standard: bytes) -> bytes:
    """Decode one segment already mapped to standard base64 (see `parse`); `_Malformed` unless
    it is canonical and unpadded."""
    leftover = len(standard) % 4
    if leftover == 1 or (leftover and standard[-1] not in _CANONICAL_LAST[leftover]):
        raise _Malformed("non-canonical base64url")
    try:
        # strict_mode refuses every byte outside the alphabet (space, controls, non-ASCII).
        return binascii.a2b_base64(standard + _PADDING[leftover], strict_mode=True)
    except binascii.Error as exc:
        raise _Malformed("invalid base64url") from exc


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Malformed("duplicate member name")  # RFC 7515 §5.2 step 4, RFC 7519 §4
    return obj


def _constant(name: str) -> Any:
    raise _Malformed(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)
# What `raw_decode` calls, without its whitespace handling. (typeshed types the C scanner's
# argument as the scanner class itself; it takes the decoder whose settings it copies.)
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(_DECODER)  # type: ignore[arg-type]


def json_object(raw: bytes) -> dict[str, Any]:
    """Decode UTF-8 JSON that must be an object with unique member names, nested at most
    `MAX_JSON_DEPTH` deep. Whatever the bytes, the only exception is a `ValueError`."""
    return _json_object(raw)[0]


def _json_object(raw: bytes) -> tuple[dict[str, Any], bool]:
    """`json_object`, and whether the object is flat: no arrays and no nested objects."""
    try:
        text = raw.decode("utf-8")
        # The C scanner alone reads the usual object with no surrounding whitespace; anything
        # else (whitespace, not JSON, trailing data) goes through the full decoder to be
        # accepted or refused as before. This skips two regex calls per segment.
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            value = _DECODER.decode(text)
    except _Malformed:
        raise  # from the hooks: a duplicate member name, NaN or Infinity
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Malformed("invalid JSON") from exc
    except ValueError as exc:
        # The one other ValueError of the decoder: an integer of more digits than the
        # interpreter converts (`sys.get_int_max_str_digits()`, 4300 by default).
        raise _Malformed("invalid JSON: a number with too many digits") from exc
    except RecursionError as exc:  # nested deeper than the stack allows: deeper than the bound
        raise _Malformed(_TOO_DEEP) from exc
    if not isinstance(value, dict):
        raise _Malformed("not a JSON object")
    # No "[" and no "{" but the first: no arrays or nested objects (a "[" or "{" inside a string
    # only makes this False, never wrongly True). Two C-speed searches; see `freeze`. Only JSON
    # that is not flat can be too deep, and only if it has more brackets than the bound (a
    # C-speed count, ~0.5 ns per character); then the decoded value itself is measured.
    flat = "[" not in text and text.find("{", 1) < 0
    if not flat and text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise _Malformed(_TOO_DEEP)
    return value, flat


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


def looks_like_jws(token: str) -> bool:
    """Whether `token` has the form of a compact JWS, however malformed beyond it: three
    segments (RFC 7516 §9 tells a JWE by its five), the first base64url of a JSON object.

    For tokens `parse` refused: with introspection configured, such a token is refused here
    rather than sent to the authorization server. Lenient on purpose (padding, duplicate
    members): a random opaque string never decodes to a JSON object by chance.
    """
    header, _, rest = token.partition(".")
    if rest.count(".") != 1:
        return False
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        return isinstance(json.loads(decoded), dict)
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError among them
        return False


def parse(token: str) -> UnverifiedJWT:
    """Split and decode a compact JWS, refusing any header that is not plainly acceptable.

    Raises `InvalidTokenError` with `Reason.MALFORMED` or `Reason.UNSUPPORTED_HEADER`; its
    `__cause__` says what was wrong, for logs and `bearerguard check`, never for the client.
    """
    # The whole token at once: one ASCII encode and one `bytes.translate` that maps base64url to
    # standard base64 and drops "+", "/" and "=" (a changed length means they were there); then
    # each segment's strict decode refuses any other byte. "." is left for the split.
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidTokenError(Reason.MALFORMED) from _Malformed("not ASCII")
    standard = raw.translate(_TO_STANDARD, _NOT_BASE64URL)
    parts = standard.split(b".")
    if len(parts) != 3 or b"" in parts or len(standard) != len(raw):
        raise InvalidTokenError(Reason.MALFORMED) from _Malformed(
            "not three non-empty base64url segments"
        )
    header_part, payload_part, signature_part = parts
    try:
        header = json_object(_segment(header_part))
        claims, flat = _json_object(_segment(payload_part))
        signature = _segment(signature_part)
    except _Malformed as exc:
        raise InvalidTokenError(Reason.MALFORMED) from exc
    # Each present one must be a string (`"kid": null` is not "no kid"). JSON strings decode to
    # exactly `str`, so `type() is` is the same test as isinstance here.
    alg, kid, typ = header.get("alg"), header.get("kid", ""), header.get("typ", "")
    if type(alg) is not str or type(kid) is not str or type(typ) is not str:
        error = InvalidTokenError(Reason.MALFORMED)
        raise _naming(error, header, claims) from _Malformed("alg, kid or typ not a string")
    if not _REFUSED_HEADERS.isdisjoint(header):
        refused = ", ".join(sorted(_REFUSED_HEADERS.intersection(header)))
        error = InvalidTokenError(Reason.UNSUPPORTED_HEADER)
        raise _naming(error, header, claims) from _Malformed(f"refused: {refused}")
    signing_input = raw[: len(header_part) + len(payload_part) + 1]
    return UnverifiedJWT(header, claims, signing_input, signature, alg, header.get("kid"), flat)


def _naming(error: InvalidTokenError, header: dict[str, Any], claims: dict[str, Any]) -> Any:
    """`error`, knowing what the decoded token names (unverified), for the refusal's log line."""
    error.seen = seen_in(header, claims, verified=False)
    return error
