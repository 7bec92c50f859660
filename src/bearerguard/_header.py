"""Reading the bearer token out of an Authorization header value (RFC 6750 §2.1, RFC 9110 §11).

The grammar is `credentials = "Bearer" 1*SP b64token`, with the scheme matched case-insensitively
(RFC 9110 §11.1) and `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
"""

from __future__ import annotations

import re

from ._errors import BearerError, InvalidRequestError, MissingTokenError, Reason

_SCHEME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The b64token alphabet but "=", which may only end it. Deleting these bytes with one C-speed
# `bytes.translate` leaves nothing for a well-formed token; a regex costs ~3 ns per character.
_B64TOKEN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
# A list member that starts a credential: an auth-scheme followed by a space or nothing.
_MEMBER_SCHEME = re.compile(r" *([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?: |$)")
_BEARER = ("Bearer",)


def bearer_candidate(authorization: str | None) -> str | None:
    """What follows `Bearer` and its spaces, unchecked; None for no header or another scheme.

    Only for looking the token up in the verified-token cache: a token found there passed the
    strict JWS parse, whose alphabet (base64url and ".") lies within b64token, so the header
    follows the grammar. Anything else goes through `extract_bearer`.
    """
    if not authorization:
        return None
    if authorization.startswith("Bearer ") or (  # the usual spelling, compared without a copy
        authorization[6:7] == " " and authorization[:6].isascii()
        and authorization[:6].lower() == "bearer"
    ):  # fmt: skip
        return authorization[7:].strip(" ")  # 1*SP before the token; trailing ones tolerated
    return None


def is_b64token(token: str) -> bool:
    body = token.rstrip("=")
    return bool(body) and body.isascii() and not body.encode("ascii").translate(None, _B64TOKEN)


def extract_bearer(authorization: str | None) -> str:
    """Return the token of a `Bearer` Authorization header value.

    No header, or a header of another scheme (say `Basic`), means the request carried no bearer
    credentials: `MissingTokenError`. A `Bearer` header that does not follow the grammar is a
    malformed request: `InvalidRequestError`.
    """
    token = bearer_candidate(authorization)
    if token is not None and is_b64token(token):
        return token
    raise _refusal(authorization, _BEARER)


def extract_credentials(
    authorization: str | None, schemes: tuple[str, ...] = ("Bearer",)
) -> tuple[str, str]:
    """The scheme (spelled as in `schemes`) and token of an Authorization header value of one
    of `schemes`, refused as `extract_bearer` refuses. The `DPoP` scheme (RFC 9449 §7.1) takes
    a token68, the same grammar as b64token, and is matched case-insensitively like Bearer."""
    if schemes == _BEARER:
        return "Bearer", extract_bearer(authorization)
    if authorization:
        name, space, rest = authorization.partition(" ")
        if space and name.isascii():
            lower = name.lower()
            for scheme in schemes:
                if lower == scheme.lower() and is_b64token(token := rest.strip(" ")):
                    return scheme, token
    raise _refusal(authorization, schemes)


def _refusal(authorization: str | None, schemes: tuple[str, ...]) -> BearerError:
    """Why `authorization` carries no token of `schemes`: missing, or malformed."""
    if not authorization:
        return MissingTokenError()
    scheme = authorization.partition(" ")[0]
    accepted = {name.lower() for name in schemes}
    # Repeated Authorization field lines arrive joined by commas (RFC 9110 §5.3; WSGI servers do
    # it, and the ASGI middleware does the same): several credentials, one of them accepted.
    members = [
        m[1].lower() for part in authorization.split(",") if (m := _MEMBER_SCHEME.match(part))
    ]
    if len(members) > 1 and accepted.intersection(members):
        return InvalidRequestError(Reason.MULTIPLE_CREDENTIALS)
    if scheme.lower() in accepted or not _SCHEME.fullmatch(scheme):
        return InvalidRequestError(Reason.MALFORMED_HEADER)
    return MissingTokenError()  # another scheme: no credentials of ours (RFC 6750 §3.1)
