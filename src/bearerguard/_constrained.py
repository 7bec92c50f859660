"""The sender constraints around the verification engine (`Engine` inherits `Constrained`):
DPoP's request steps (RFC 9449, see `_sender`) and, whatever the DPoP mode, the token's binding
(`cnf`): a token whose `cnf` names a client certificate (RFC 8705) is served, on a cache hit or
a miss, only with that certificate, and with DPoP off a DPoP-bound token (`cnf.jkt`) is never
served, as it could only come as a bearer token (RFC 9449 §7.2). A token refused at its binding
is never reported accepted.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING

from ._binding import check_binding
from ._cache import TokenCache
from ._credentials import NO_CONTEXT, Credentials, RequestContext, read_credentials
from ._errors import (
    BearerError,
    MissingTokenError,
    Seen,
    UpstreamUnavailableError,
    in_dpop_scheme,
)
from ._events import Events, TokenAccepted
from ._token import AccessToken
from ._types import Clock

if TYPE_CHECKING:  # the sender check is built by the server, and the engine imports it
    from ._dpop import DPoPProof
    from ._sender import SenderCheck


class Constrained:
    """`Engine`'s sender-constraint steps. They use the engine's state and its miss path,
    declared here; `ResourceServer` sets the attributes."""

    events: Events
    _hits_watched: bool
    _tokens: TokenCache
    _clock: Clock
    _timer: Clock
    _schemes: tuple[str, ...]

    if TYPE_CHECKING:  # the engine's own (`_engine.Engine`, which imports `SenderCheck`)
        _sender: SenderCheck | None

        def _refused(
            self, exc: BearerError | UpstreamUnavailableError, seen: Seen | None = None
        ) -> None: ...
        def _accepted(
            self, access: AccessToken, started: float, report: bool = True
        ) -> AccessToken: ...
        def _checked(self, credentials: Credentials) -> Credentials: ...
        def _verify(self, credentials: Credentials, report: bool = True) -> AccessToken: ...
        async def _averify(self, credentials: Credentials, report: bool = True) -> AccessToken: ...

    def _read(self, authorization: str | None, context: RequestContext = NO_CONTEXT) -> Credentials:
        """`read_credentials` of the schemes this server accepts (unreported refusals)."""
        try:
            return read_credentials(authorization, context, self._schemes)
        except MissingTokenError:
            if self._sender is None:
                raise
            raise self._sender.missing() from None

    def _missing(self) -> MissingTokenError:
        return MissingTokenError() if self._sender is None else self._sender.missing()

    # -- DPoP off: a bearer token, and the binding of a bound one ---------------------------

    def _bearer(self, credentials: Credentials, hit: AccessToken | None) -> AccessToken:
        """A Bearer request that is not a plain cache hit (sync twin): a miss, verified (its
        certificate binding checked before it is reported), or a bound token's hit."""
        if hit is None:
            return self._verify(credentials)
        return self._bound_hit(hit, credentials.certificate)

    async def _abearer(self, credentials: Credentials, hit: AccessToken | None) -> AccessToken:
        """`_bearer` (async twin)."""
        if hit is None:
            return await self._averify(credentials)
        return self._bound_hit(hit, credentials.certificate)

    def _bound_hit(self, hit: AccessToken, certificate: str | None) -> AccessToken:
        """A verified-token cache hit of a bound token with DPoP off: served once its binding
        holds for this request (`certified`), and reported then."""
        started = perf_counter()
        try:
            certified(hit, certificate)
        except BearerError as exc:
            self._refused(exc, seen_of(hit))
            raise
        return self._sent(hit, True, started)

    # -- DPoP (RFC 9449): the proof before the token, the binding and the replay check after ---

    def _constrained(self, sender: SenderCheck, credentials: Credentials) -> AccessToken:
        """`verify_credentials` with DPoP enabled (sync twin); see `_sender`."""
        credentials = self._checked(credentials)
        started = perf_counter()  # the proof's check counts too
        proof = self._proof(sender, credentials)
        hit = self._tokens.get_token(credentials.token, self._clock, self._timer)
        try:
            access = hit or self._verify(credentials, report=False)
        except BearerError as exc:  # expired, revoked...: a DPoP request is answered in DPoP
            _answered(exc, sender, credentials)
            raise
        try:
            sender.bind(access, credentials, proof)
            if proof is not None:
                sender.record(proof, self._clock())
        except (BearerError, UpstreamUnavailableError) as exc:
            self._refused(exc, seen_of(access))
            raise
        return self._sent(access, hit is not None, started)

    async def _aconstrained(self, sender: SenderCheck, credentials: Credentials) -> AccessToken:
        """`averify_credentials` with DPoP enabled (async twin)."""
        credentials = self._checked(credentials)
        started = perf_counter()  # the proof's check counts too
        proof = self._proof(sender, credentials)
        hit = self._tokens.get_token(credentials.token, self._clock, self._timer)
        try:
            access = hit or await self._averify(credentials, report=False)
        except BearerError as exc:
            _answered(exc, sender, credentials)
            raise
        try:
            sender.bind(access, credentials, proof)
            if proof is not None:
                await sender.arecord(proof, self._clock())
        except (BearerError, UpstreamUnavailableError) as exc:
            self._refused(exc, seen_of(access))
            raise
        return self._sent(access, hit is not None, started)

    def _sent(self, access: AccessToken, cached: bool, started: float) -> AccessToken:
        """`access`, reported accepted once the request's sender checks held too: a stolen
        token refused at its binding is never reported as accepted."""
        if cached and self._hits_watched:
            duration = perf_counter() - started
            hit = TokenAccepted(access.source, access.issuer, access.client_id, True, duration)
            self.events.emit(hit)
        return access if cached else self._accepted(access, started)

    def _proof(self, sender: SenderCheck, credentials: Credentials) -> DPoPProof | None:
        try:
            return sender.proof(credentials, self._clock())
        except BearerError as exc:
            self._refused(exc)
            raise


def _answered(exc: BearerError, sender: SenderCheck, credentials: Credentials) -> BearerError:
    """A refusal of the token of a request made with the DPoP scheme, in that scheme (RFC 9449
    §7.1), naming the proof algorithms; a Bearer request's as it is."""
    return in_dpop_scheme(exc, sender.algs) if credentials.scheme == "DPoP" else exc


def certified(access: AccessToken, certificate: str | None) -> None:
    """With DPoP off, a bound token's binding, judged as any Bearer request's (`check_binding`):
    a token whose `cnf` names a certificate needs it on this request (RFC 8705 §3); a DPoP-bound
    one (`cnf.jkt`) is refused, since it needs the DPoP scheme (RFC 9449 §7.2), and so is one
    bound by a method not checked here."""
    check_binding(access.claims.get("cnf"), None, certificate, "Bearer")


def seen_of(access: AccessToken) -> Seen:  # a refusal of an accepted token: what it names
    return Seen("token", access.issuer, None, None, access.client_id)
