"""Strict parsing of a JWS compact serialization (RFC 7515 §7.1, RFC 8725 §3).

Nothing here trusts the token: it splits, decodes and type-checks, so that the verifier can pick a
key and check a signature. The rules are strict on purpose: one canonical base64url form with no
padding, UTF-8 JSON objects with no duplicate member names and no NaN or Infinity, and no header
parameter that would let the token choose its own key or change how it is verified.
"""

from __future__ import annotations

import base64
import json
from typing import Any, NamedTuple

from ._b64json import NOT_BASE64URL, TO_STANDARD, Malformed, json_object, json_object_flat, segment
from ._errors import InvalidTokenError, Reason, seen_in

__all__ = ["UnverifiedJWT", "json_object", "looks_like_jws", "parse"]

# Header parameters that hand the token control over which key verifies it (RFC 8725 §3.10), or
# that change the payload encoding. None of them is ever honoured.
_REFUSED_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit", "b64", "zip", "enc"})


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
        raise InvalidTokenError(Reason.MALFORMED) from Malformed("not ASCII")
    standard = raw.translate(TO_STANDARD, NOT_BASE64URL)
    parts = standard.split(b".")
    if len(parts) != 3 or b"" in parts or len(standard) != len(raw):
        raise InvalidTokenError(Reason.MALFORMED) from Malformed(
            "not three non-empty base64url segments"
        )
    header_part, payload_part, signature_part = parts
    try:
        header = json_object(segment(header_part))
        claims, flat = json_object_flat(segment(payload_part))
        signature = segment(signature_part)
    except Malformed as exc:
        raise InvalidTokenError(Reason.MALFORMED) from exc
    # Each present one must be a string (`"kid": null` is not "no kid"). JSON strings decode to
    # exactly `str`, so `type() is` is the same test as isinstance here.
    alg, kid, typ = header.get("alg"), header.get("kid", ""), header.get("typ", "")
    if type(alg) is not str or type(kid) is not str or type(typ) is not str:
        error = InvalidTokenError(Reason.MALFORMED)
        raise _naming(error, header, claims) from Malformed("alg, kid or typ not a string")
    if not _REFUSED_HEADERS.isdisjoint(header):
        refused = ", ".join(sorted(_REFUSED_HEADERS.intersection(header)))
        error = InvalidTokenError(Reason.UNSUPPORTED_HEADER)
        raise _naming(error, header, claims) from Malformed(f"refused: {refused}")
    signing_input = raw[: len(header_part) + len(payload_part) + 1]
    return UnverifiedJWT(header, claims, signing_input, signature, alg, header.get("kid"), flat)


def _naming(error: InvalidTokenError, header: dict[str, Any], claims: dict[str, Any]) -> Any:
    """`error`, knowing what the decoded token names (unverified), for the refusal's log line."""
    error.seen = seen_in(header, claims, verified=False)
    return error
