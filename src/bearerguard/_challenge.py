"""The one renderer of refusals: RFC 6750 §3 challenges, RFC 9728 §5.1 `resource_metadata`, 503s.

Every adapter sends what `challenge_for()` returns, so a refusal looks the same whatever the
framework; it is public, for frameworks bearerguard has no adapter for.
Descriptions are the fixed text of the refusal's `Reason`; a token or library text never appears.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ._errors import (
    BearerError,
    ConfigurationError,
    DPoPMissingTokenError,
    InsufficientScopeError,
    UpstreamUnavailableError,
    UseDPoPNonceError,
)

Headers = tuple[tuple[str, str], ...]

_JSON = ("content-type", "application/json")
# A refusal is about one request's credentials: no shared cache may store or replay it.
_NO_STORE = ("cache-control", "no-store")


@dataclass(frozen=True, slots=True)
class Challenge:
    """A rendered refusal: status, headers as (lower-case name, value) pairs, and body.

    The body is the JSON `{"error": ..., "error_description": ...}` (with a `content-type`
    header), or empty for a request that sent no credentials (RFC 6750 §3.1).
    """

    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)


class Refused(Exception):
    """A request a route requirement refused, already rendered by the guard that judged it.

    Route helpers send `challenge` in their framework's response type; `description` is the
    refusal's fixed, client-safe text.
    """

    def __init__(self, challenge: Challenge, description: str) -> None:
        super().__init__(description)
        self.challenge = challenge
        self.description = description


def challenge_for(
    exc: BearerError | UpstreamUnavailableError,
    *,
    realm: str | None = None,
    resource_metadata: str | None = None,
) -> Challenge:
    """Render a refusal as status, headers and body, for any framework to send.

    `Bearer` challenges carry `realm` when given, `error` and `error_description` unless no
    credentials were sent (RFC 6750 §3.1), `scope` on `insufficient_scope` (the scopes the route
    names), and `resource_metadata` when the RFC 9728 document URL is configured. An
    `UpstreamUnavailableError` is a 503 with `Retry-After` when known, and no challenge.

    Example, in a framework without an adapter::

        try:
            token = await server.aauthenticate(request.headers.get("authorization"))
            Requirement.of("orders.read").check(token)
        except (BearerError, UpstreamUnavailableError) as exc:
            refusal = challenge_for(exc, realm="orders-api")
            return Response(refusal.body, refusal.status, headers=list(refusal.headers))
    """
    for name, value in (("realm", realm), ("resource_metadata", resource_metadata)):
        # They go into a header as they are (quoted): CR, LF or non-ASCII would break it.
        if value is not None and not (value.isascii() and value.isprintable()):
            raise ConfigurationError(f"{name} must be printable ASCII")
    return render_refusal(exc, realm, resource_metadata)


def render_refusal(
    exc: BearerError | UpstreamUnavailableError, realm: str | None, resource_metadata: str | None
) -> Challenge:
    """`challenge_for` without its checks: for `Guard`, which checked its realm once."""
    if isinstance(exc, UpstreamUnavailableError):
        # No WWW-Authenticate: the credentials were not judged, so there is nothing to challenge
        # (RFC 9110 §11.6.1 ties the header to 401). Retry-After per RFC 9110 §10.2.3.
        headers: list[tuple[str, str]] = [_JSON, _NO_STORE]
        if exc.retry_after is not None:
            headers.append(("retry-after", str(max(1, math.ceil(exc.retry_after)))))
        return Challenge(exc.status_code, tuple(headers), _body("temporarily_unavailable", exc))
    value = _challenge(exc.scheme, exc, realm, resource_metadata)
    if isinstance(exc, DPoPMissingTokenError) and exc.bearer:  # both schemes accepted
        value = f"{_challenge('Bearer', exc, realm, resource_metadata, algs=False)}, {value}"
    challenge: Headers = (("www-authenticate", value),)
    if isinstance(exc, UseDPoPNonceError) and exc.nonce is not None:  # RFC 9449 §9
        challenge += (("dpop-nonce", exc.nonce),)
    if exc.error is None:  # RFC 6750 §3.1: nothing to explain when nothing was sent
        return Challenge(exc.status_code, (*challenge, _NO_STORE), b"")
    return Challenge(exc.status_code, (*challenge, _JSON, _NO_STORE), _body(exc.error, exc))


def _challenge(
    scheme: str,
    exc: BearerError,
    realm: str | None,
    resource_metadata: str | None,
    *,
    algs: bool = True,
) -> str:
    """One challenge (RFC 9110 §11.3) of `scheme` for `exc`."""
    params: list[tuple[str, str]] = [] if realm is None else [("realm", realm)]
    if exc.error is not None:
        params += [("error", exc.error), ("error_description", exc.description)]
    if isinstance(exc, InsufficientScopeError) and exc.required:  # none: a policy's deny
        params.append(("scope", " ".join(exc.required)))
    if exc.algs and algs:  # a DPoP challenge: the proof algorithms accepted (RFC 9449 §7.1)
        params.append(("algs", " ".join(exc.algs)))
    if resource_metadata is not None:
        params.append(("resource_metadata", resource_metadata))
    value = ", ".join(f'{name}="{_quoted(text)}"' for name, text in params)
    return f"{scheme} {value}" if value else scheme


def _body(error: str, exc: BearerError | UpstreamUnavailableError) -> bytes:
    return json.dumps({"error": error, "error_description": exc.reason.value}).encode()


def _quoted(value: str) -> str:
    # RFC 9110 §5.6.4 quoted-string: a backslash and a DQUOTE are sent as quoted-pairs.
    return value.replace("\\", "\\\\").replace('"', '\\"')
