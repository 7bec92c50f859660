"""The credentials seam: what a request presents, as the one value the core verifies.

An adapter (the ASGI and WSGI middlewares, which every framework integration goes through) reads
a request in one place each, in two steps:

- `credentials(store)` (in `asgi`/`wsgi`): the `Authorization` field lines and the query string.
  That is all a verified-token cache hit needs, so a hit costs one dict lookup and builds nothing;
- `context(store)`, only when the token must be verified: the method, the URL as the client
  addressed it, the `DPoP` proof header values and the client certificate a TLS terminator
  passed on (the ASGI `tls` extension, the WSGI `SSL_CLIENT_CERT`).

`read_credentials` turns both into a `Credentials` (refusing a malformed header as RFC 6750 §3.1
says), and `ResourceServer.verify_credentials` verifies it. `ResourceServer.authenticate(header)`
is the convenience for callers that have only a header value.

Sender-constrained tokens need the whole value: with `ResourceServer(dpop=...)` the `DPoP`
scheme is read too and its proof checked against the method and URL (RFC 9449); without it, the
`DPoP` scheme is another scheme (no bearer credentials, 401). The client certificate is judged
for a token bound to one (RFC 8705, whatever the DPoP mode), and parsed only then. Behind
proxies, the URL and certificate are what a trusted proxy forwarded (`_proxy.TrustedProxies`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from ._header import extract_credentials

if TYPE_CHECKING:
    from ._proxy import ProxyReader


class RequestContext(NamedTuple):
    """What a request says besides its `Authorization` header, read by its adapter."""

    method: str | None = None
    url: str | None = None  # scheme://host[:port]/path?query, as the client addressed it
    proofs: tuple[str, ...] = ()  # the `DPoP` header field values, as sent
    # The client certificate, from a TLS terminator: PEM (plain or URL-escaped) or an Envoy
    # XFCC element (`Hash=...;Cert=...`), told apart by their grammar (`client_thumbprint`).
    certificate: str | None = None


NO_CONTEXT = RequestContext()

S = TypeVar("S", bound=Mapping[str, Any])  # a request's store: an ASGI scope, a WSGI environ


@dataclass(frozen=True, slots=True)
class Adapter(Generic[S]):
    """The one place an adapter reads a request's credentials from its store (`asgi.ADAPTER`,
    `wsgi.ADAPTER`): `credentials` the Authorization lines and the query string, all that a
    cache hit needs, and `context` the rest (`RequestContext`), read only on a miss."""

    credentials: Callable[[S], tuple[Sequence[str], str]]
    context: Callable[[S, ProxyReader | None], RequestContext]


class Credentials(NamedTuple):
    """One request's credentials: what `ResourceServer.verify_credentials` verifies.

    `scheme` is the authorization scheme in its registered spelling (`"Bearer"`), `token` the
    access token; the other fields are the request's `RequestContext`. Never logged: `repr`
    shows the scheme and the token's length only.
    """

    scheme: str
    token: str
    method: str | None = None
    url: str | None = None
    proofs: tuple[str, ...] = ()
    certificate: str | None = None

    def __repr__(self) -> str:
        return (
            f"Credentials(scheme={self.scheme!r}, token=<{len(self.token)} chars>, "
            f"method={self.method!r}, proofs={len(self.proofs)}, "
            f"certificate={self.certificate is not None})"
        )


def read_credentials(
    authorization: str | None,
    context: RequestContext = NO_CONTEXT,
    schemes: tuple[str, ...] = ("Bearer",),
) -> Credentials:
    """The credentials of an `Authorization` header value and the rest of its request.

    `schemes` are the authorization schemes accepted (`"Bearer"`, `"DPoP"`), in their registered
    spelling, which `Credentials.scheme` then has. Raises `MissingTokenError` for no header or
    another scheme, `InvalidRequestError` for a malformed one or several credentials (RFC 6750
    §2.1, §3.1).
    """
    scheme, token = extract_credentials(authorization, schemes)
    return Read(scheme, token, *context)


class Read(Credentials):
    """`Credentials` that `read_credentials` made: their token follows the header grammar
    already, so the server does not check it again (about 0.5 µs for a 900-byte token)."""

    __slots__ = ()


def proof_values(lines: Sequence[str]) -> tuple[str, ...]:
    """The `DPoP` proofs of a request's field lines, each split at commas: a JWS holds none, and
    a server that joined repeated lines (WSGI does) must not hide a second proof (RFC 9449
    §4.3 requires exactly one)."""
    return tuple(part.strip() for line in lines for part in line.split(","))
