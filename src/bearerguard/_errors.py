"""The exceptions bearerguard raises, each knowing its RFC 6750 §3.1 error code and HTTP status.

The client-facing description of a refusal is a fixed string chosen by its `Reason`; library
exception text never reaches a client (it stays reachable as `__cause__` for logs and debugging).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NamedTuple

from ._frozen import client_id_of
from ._redact import safe_url


class Reason(enum.Enum):
    """Why a request was refused: for logs and metrics. The value is the safe client text."""

    # 400 invalid_request
    MALFORMED_HEADER = "The Authorization header is malformed."
    MULTIPLE_CREDENTIALS = "The request carries more than one access token."
    TOKEN_IN_URL = "Access tokens are not accepted in the URL."
    PATH = "The request path is not in normal form."
    # 401, no error code
    MISSING = "No access token was sent."
    # 401 invalid_token: the token's form
    TOO_LARGE = "The access token is too large."
    MALFORMED = "The access token is malformed."
    UNSUPPORTED_HEADER = "The access token uses an unsupported header parameter."
    ALGORITHM = "The access token is signed with an algorithm that is not allowed."
    TYPE = "The access token has the wrong type."
    # 401 invalid_token: keys and signature
    UNKNOWN_ISSUER = "The access token was issued by an untrusted issuer."
    UNKNOWN_KID = "The access token was signed with an unknown key."
    BAD_SIGNATURE = "The access token signature is invalid."
    # 401 invalid_token: claims
    CLAIM_TYPE = "The access token has a claim of the wrong type."
    MISSING_CLAIM = "The access token lacks a required claim."
    AUDIENCE = "The access token is not intended for this resource."
    CLAIM_VALUE = "The access token has a claim with a value that is not accepted."
    EXPIRED = "The access token has expired."
    NOT_YET_VALID = "The access token is not valid yet."
    ISSUED_IN_FUTURE = "The access token was issued in the future."
    TOO_OLD = "The access token is too old."
    INACTIVE = "The access token is not active."
    # 401 invalid_token: the token's sender constraint (RFC 9449 §6, §7; RFC 8705 §3)
    CONFIRMATION = "The access token has a confirmation method that is not supported."
    DPOP_UNBOUND = "The access token is not bound to a DPoP key."
    DPOP_DOWNGRADE = "The access token is bound to a DPoP key and needs the DPoP scheme."
    DPOP_BINDING = "The access token is bound to another key than the DPoP proof's."
    CERT_BINDING = "The access token is not bound to the client certificate."
    CERT_MALFORMED = "The client certificate could not be read."
    DPOP_OFF = "The resource needs a DPoP-bound access token, which this server does not accept."
    # 401 invalid_dpop_proof: the DPoP proof (RFC 9449 §4.3)
    DPOP_MISSING = "The request carries no DPoP proof."
    DPOP_MULTIPLE = "The request carries more than one DPoP proof."
    DPOP_TOO_LARGE = "The DPoP proof is too large."
    DPOP_MALFORMED = "The DPoP proof is malformed."
    DPOP_CLAIM = "The DPoP proof lacks a required claim or has one of the wrong type."
    DPOP_TYPE = "The DPoP proof has the wrong type."
    DPOP_ALGORITHM = "The DPoP proof is signed with an algorithm that is not allowed."
    DPOP_KEY = "The DPoP proof does not carry a usable public key."
    DPOP_SIGNATURE = "The DPoP proof signature is invalid."
    DPOP_METHOD = "The DPoP proof was made for another HTTP method."
    DPOP_URL = "The DPoP proof was made for another URL."
    DPOP_TOO_OLD = "The DPoP proof is too old."
    DPOP_IN_FUTURE = "The DPoP proof was issued in the future."
    DPOP_ATH = "The DPoP proof was made for another access token."
    DPOP_REPLAYED = "The DPoP proof has been used before."
    DPOP_REPLAY_WINDOW = "The DPoP proof is too old for this server to tell it from a replay."
    # 401 use_dpop_nonce (RFC 9449 §9)
    DPOP_NONCE = "The DPoP proof lacks a valid nonce from this server."
    # 403 insufficient_scope
    SCOPE = "The access token lacks a required scope."
    # 503, not the client's fault
    UPSTREAM = "The authorization server could not be reached."
    DPOP_STORE = "The DPoP replay check is unavailable."


class Seen(NamedTuple):
    """What the server had read of a token when it refused it: for the log line, never a client.

    `source` says how far to trust the values: `"unverified jwt"` (read before the signature was
    checked: attacker-controlled), `"jwt"` (signed), `"introspection"` (the AS's answer) or
    `"token"` (an accepted `AccessToken` a route requirement refused). Values are as read
    (any JSON type); `_logfields` cuts and escapes them when it logs them.
    """

    source: str
    issuer: Any = None
    kid: Any = None
    alg: Any = None
    client_id: Any = None
    hint: str | None = None  # for UNKNOWN_ISSUER: the configured issuer it nearly names


def seen_in(header: Mapping[str, Any], claims: Mapping[str, Any], *, verified: bool) -> Seen:
    """What a JWT's header and claims name; `verified` says whether its signature held."""
    return Seen(
        "jwt" if verified else "unverified jwt",
        claims.get("iss"),
        header.get("kid"),
        header.get("alg"),
        client_id_of(claims),
    )


class BearerGuardError(Exception):
    """Root of every exception bearerguard raises."""


class ConfigurationError(BearerGuardError, ValueError):
    """The configuration is invalid. Raised at construction or start-up, never per request.

    `field` names the offending setting when there is one, so that `from_env()` can name the
    environment variable it came from.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BearerError(BearerGuardError):
    """A request the resource server refuses (RFC 6750 §3). The class owns code and status."""

    # The challenge's scheme, and for DPoP the proof algorithms it names (RFC 9449 §7.1); a
    # refusal of a request made with the DPoP scheme is answered in it (`in_dpop_scheme`).
    scheme: str = "Bearer"
    algs: tuple[str, ...] = ()
    error: ClassVar[str | None]
    status_code: ClassVar[int]
    seen: Seen | None = None  # set where the refusal knows what the token names (for logs)

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason

    @property
    def description(self) -> str:
        """The fixed, client-safe description of the refusal."""
        return self.reason.value


class MissingTokenError(BearerError):
    """The request carried no bearer credentials at all."""

    error = None  # RFC 6750 §3.1: no error code when the request had no credentials
    status_code = 401

    def __init__(self, reason: Reason = Reason.MISSING) -> None:
        super().__init__(reason)


class InvalidRequestError(BearerError):
    """The request is malformed: bad header syntax, or more than one credential."""

    error = "invalid_request"
    status_code = 400


class InvalidTokenError(BearerError):
    """The token is malformed, expired, revoked, or otherwise not acceptable."""

    error = "invalid_token"
    status_code = 401


class DPoPError(BearerError):
    """A refusal answered with a `DPoP` challenge naming the acceptable proof algorithms."""

    scheme = "DPoP"

    def __init__(self, reason: Reason, *, algs: Iterable[str] = ()) -> None:
        super().__init__(reason)
        self.algs = tuple(algs)


class InvalidDPoPProofError(DPoPError):
    """The DPoP proof is missing, malformed, or not made for this request (RFC 9449 §4.3)."""

    error = "invalid_dpop_proof"
    status_code = 401


class UseDPoPNonceError(DPoPError):
    """The DPoP proof lacks a nonce this server requires, or its nonce is stale (RFC 9449 §9).
    `nonce` is the fresh one the server sends in the `DPoP-Nonce` response header."""

    error = "use_dpop_nonce"
    status_code = 401
    nonce: str | None = None


class DPoPMissingTokenError(MissingTokenError, DPoPError):
    """No credentials, at a server that accepts the DPoP scheme: its challenge names DPoP and
    its proof algorithms (RFC 9449 §7.1), after a Bearer challenge when `bearer` tokens are
    accepted too (one field value, two challenges: RFC 9110 §11.6.1)."""

    def __init__(self, *, algs: Iterable[str], bearer: bool) -> None:
        DPoPError.__init__(self, Reason.MISSING, algs=algs)
        self.bearer = bearer


class DPoPBindingError(DPoPError, InvalidTokenError):
    """A token sent with the DPoP scheme is not bound to the proof's key (RFC 9449 §7.1)."""


def in_dpop_scheme(exc: BearerError, algs: Iterable[str]) -> BearerError:
    """`exc`, answered with a `DPoP` challenge naming `algs`: a request made with the DPoP scheme
    (or with a DPoP-bound token) is refused in that scheme, whatever the error (RFC 9449 §7.1
    takes RFC 6750's error codes into it: an expired token, a missing scope)."""
    if exc.scheme != "DPoP":
        exc.scheme, exc.algs = "DPoP", tuple(algs)
    return exc


class InsufficientScopeError(BearerError):
    """The token is valid but lacks a scope the resource requires."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(self, required: Iterable[str]) -> None:
        super().__init__(Reason.SCOPE)
        self.required = tuple(sorted(set(required)))


# Seconds until the authorization server is asked again, when the raiser knows no later time: a
# failed introspection or role lookup is retried by the next request that needs it.
RETRY_AFTER = 1.0


class UpstreamUnavailableError(BearerGuardError):
    """The authorization server could not be asked and nothing usable is cached: answer 503.

    This is deliberately not a `BearerError`: the client did nothing wrong, so it must never be
    rendered as `invalid_token`. `retry_after` is the time in seconds until bearerguard asks the
    authorization server again (a key fetch's cool-down, say), sent as `Retry-After`.
    """

    status_code: ClassVar[int] = 503
    reason = Reason.UPSTREAM
    seen: Seen | None = None  # what the token names, if it was read (for logs)

    def __init__(
        self, what: str, *, retry_after: float | None = RETRY_AFTER, url: str | None = None
    ) -> None:
        super().__init__(f"{what} could not be fetched")
        self.what = what
        self.retry_after = retry_after
        # The URL that failed, for logs, shown without userinfo or query (`safe_url`).
        self.url = None if url is None else safe_url(url)
