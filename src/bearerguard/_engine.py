"""The verification engine under `ResourceServer` (`_server`: construction, entry points, health).

Sync and async twins side by side: the cache lookup (`_hit`, one dict lookup; `_cached` and
`_seen` from a header value alone), a miss (`_verify`: `Verifier.prepare`, `KeySource.key`,
`Trusted.accept`, revocation), introspection (`_introspect`, through the store), and the events
of each outcome; DPoP and certificate binding around them come from `_constrained`. The server
sets the attributes.
"""

from __future__ import annotations

import logging
from time import perf_counter

from ._cache import TokenCache, mark_bound
from ._constrained import Constrained, certified
from ._credentials import Credentials, Read
from ._errors import (
    BearerError,
    InvalidRequestError,
    InvalidTokenError,
    Reason,
    Seen,
    UpstreamUnavailableError,
    seen_in,
)
from ._events import Events, TokenAccepted, TokenRefused
from ._fetch import HTTP
from ._header import bearer_candidate, is_b64token
from ._introspecting import aintrospect, introspect
from ._introspection import Introspector, token_key
from ._jose import UnverifiedJWT
from ._keys import Key
from ._keysource import KeySource
from ._logfields import log_event
from ._resolving import Roles
from ._sender import SenderCheck
from ._token import AccessToken
from ._trusted import Trusted
from ._types import Clock
from ._verifier import Verifier

_LOG_ONLY = (log_event,)  # `events.accepted` when only the log lines subscribe
logger = logging.getLogger("bearerguard")  # log_event's logger for accepted tokens


class Engine(Constrained):
    """The miss path, shared by the twins, and (inherited) the sender constraints around it;
    `ResourceServer` sets every attribute below."""

    events: Events
    _hits_watched: bool  # does any subscriber take cache hits? (`Events.watch` keeps it true)
    _accepted_watched: int  # who takes accepted tokens (see `_events_changed`)
    verifier: Verifier
    key_source: KeySource
    _tokens: TokenCache
    _clock: Clock
    _timer: Clock
    _http: HTTP
    _revoker: Introspector | None
    _roles: Roles
    _sender: SenderCheck | None  # DPoP on: the schemes read, the proof, binding and replay
    _resolving: bool  # are roles resolved? (then no hit is answered from the header alone)

    def _refused(
        self, exc: BearerError | UpstreamUnavailableError, seen: Seen | None = None
    ) -> None:
        if self.events.refused:
            self.events.emit(TokenRefused(exc, exc.seen or seen))

    def _hit(self, token: str) -> AccessToken | None:
        """The verified-token cache's answer for `token`: the one lookup of every entry point."""
        if not self._hits_watched:  # nobody counts hits: nothing but the lookup
            return self._tokens.get_token(token, self._clock, self._timer)
        events, started = self.events, perf_counter()
        hit = self._tokens.get_token(token, self._clock, self._timer)
        if hit is not None and not hit._bound:  # a bound token: reported once its binding held
            duration = perf_counter() - started
            events.emit(TokenAccepted(hit.source, hit.issuer, hit.client_id, True, duration))
        return hit

    def _cached(self, authorization: str | None) -> AccessToken | None:
        """The token of a header value verified before, if nothing is left to do for it (no
        role resolution): the middleware then answers without awaiting anything. Never a bound
        token (`cnf`, marked as it was cached: claims not read), nor any with DPoP `required`."""
        token = None if self._resolving else bearer_candidate(authorization)
        if token is None:
            return None
        hit = self._hit(token)
        if hit is None or hit._bound:  # a bound token's binding is judged on the full path
            return None
        return None if self._sender is not None and self._sender.policy.required else hit

    def _seen(self, authorization: str | None) -> AccessToken | Credentials:
        """The cached token of a header value verified before, else its credentials.

        A hit needs no header check beyond the scheme (see `bearer_candidate`); a miss checks
        the same string, so the verification below finds its hash computed.
        """
        token = bearer_candidate(authorization) if self._sender is None else None
        if token is not None:
            if (hit := self._hit(token)) is not None:  # a header carries no client certificate
                return self._bound_hit(hit, None) if hit._bound else hit
            if is_b64token(token):
                return Credentials("Bearer", token)
        try:  # raises: no header, another scheme, or a malformed one
            return self._read(authorization)
        except BearerError as exc:
            self._refused(exc)
            raise

    def _events_changed(self) -> None:
        """What the hot path reads of the events, kept in this object (see `Events.watch`)."""
        events = self.events
        self._hits_watched = bool(events.hits)
        # 0: nobody takes accepted tokens; 1: the log lines alone (DEBUG only); 2: others, timed.
        accepted = events.accepted
        self._accepted_watched = 0 if not accepted else 1 if accepted == _LOG_ONLY else 2

    def _accepted(self, access: AccessToken, started: float, report: bool = True) -> AccessToken:
        """`access`, reported as verified now (a miss of the verified-token cache) unless the
        caller reports it after checks of its own (`report=False`: DPoP's)."""
        # The log subscriber alone writes nothing for an accepted token but at DEBUG: no event
        # is built for it otherwise (~0.5 µs a miss, the cost of all the rest of this seam).
        watched = self._accepted_watched
        if report and watched and (watched > 1 or logger.isEnabledFor(logging.DEBUG)):
            duration = perf_counter() - started if started else None
            event = TokenAccepted(access.source, access.issuer, access.client_id, False, duration)
            self.events.emit(event)
        return access

    def _verify(self, credentials: Credentials, report: bool = True) -> AccessToken:
        """Everything after a cache miss (sync twin). `report=False`: the caller (DPoP's
        `_constrained`) checks the token's binding and reports it; else a bound token's binding
        is checked here (`certified`), before it is reported."""
        token, jwt, signed = credentials.token, None, False
        started = perf_counter() if self._accepted_watched > 1 else 0.0  # timed if watched
        try:
            route = self.verifier.prepare(token)
            if isinstance(route, Introspector):
                access = self._introspect(route, token)
            else:
                trusted, jwt = route
                key = self.key_source.key(trusted, jwt)
                try:
                    access = self._accept(token, trusted, jwt, key)
                except InvalidTokenError as exc:  # the issuer may have replaced that kid's key
                    access = self._accept(
                        token, trusted, jwt, self.key_source.replaced(trusted, jwt, key, exc)
                    )
                signed = True
                if self._revoker is not None:  # central revocation: the AS must still say active
                    self._introspect(self._revoker, token)
            if report and access._bound:
                certified(access, credentials.certificate)
            return self._accepted(access, started, report)
        except (BearerError, UpstreamUnavailableError) as exc:
            self._refused(exc, _seen(exc, jwt, signed))
            raise

    async def _averify(self, credentials: Credentials, report: bool = True) -> AccessToken:
        """Everything after a cache miss (async twin)."""
        token, jwt, signed = credentials.token, None, False
        started = perf_counter() if self._accepted_watched > 1 else 0.0  # timed if watched
        try:
            route = self.verifier.prepare(token)
            if isinstance(route, Introspector):
                access = await self._aintrospect(route, token)
            else:
                trusted, jwt = route
                key = trusted.ready_key(jwt, self._timer) or await self.key_source.akey(
                    trusted, jwt
                )
                try:
                    access = self._accept(token, trusted, jwt, key)
                except InvalidTokenError as exc:
                    key = await self.key_source.areplaced(trusted, jwt, key, exc)
                    access = self._accept(token, trusted, jwt, key)
                signed = True
                if self._revoker is not None:
                    await self._aintrospect(self._revoker, token)
            if report and access._bound:
                certified(access, credentials.certificate)
            return self._accepted(access, started, report)
        except (BearerError, UpstreamUnavailableError) as exc:
            self._refused(exc, _seen(exc, jwt, signed))
            raise

    # -- introspection: where the twins differ (keys: `KeySource`) ------------------------

    def _introspect(self, introspector: Introspector, token: str) -> AccessToken:
        access, until = introspect(
            introspector,
            token,
            token_key(token),
            run=self._http.run,
            clock=self._clock,
            wait=self._http.deadline(),
            events=self.events,
        )
        return self._keep(introspector, token, access, until)

    async def _aintrospect(self, introspector: Introspector, token: str) -> AccessToken:
        access, until = await aintrospect(
            introspector,
            token,
            token_key(token),
            run=self._http.arun,
            clock=self._clock,
            wait=self._http.deadline(),
            events=self.events,
        )
        return self._keep(introspector, token, access, until)

    def _keep(
        self, introspector: Introspector, token: str, access: AccessToken, until: float
    ) -> AccessToken:
        """`access`, kept in the verified-token cache until the introspection cache's deadline
        `until`, so a hit is one dict lookup and the store is read only on its miss. Not for
        `introspect_jwts`: a JWT confirmed by the AS is checked again (signature, claims) on
        each use, and its confirmation read from the store."""
        mark_bound(access, "cnf" in access.claims)  # the answer's `cnf` (RFC 7662 §2.2, 8705 §3.2)
        if introspector is not self._revoker:
            now = self._clock()
            self._tokens.put_token(
                token, access, deadline=until, keys=None, kid=None, key=None, now=now
            )
        return access

    # -- after the key: the signature and claims, and the cache -----------------------

    def _accept(self, token: str, trusted: Trusted, jwt: UnverifiedJWT, key: Key) -> AccessToken:
        now = self._clock()
        access, deadline = trusted.accept(jwt, key, now, token)
        mark_bound(access, "cnf" in jwt.claims)  # the decoded claims: `access.claims` is not read
        if self._revoker is None:  # else every use must reach the introspection cache
            keys = None if key is trusted.secret else trusted.keys
            self._tokens.put_token(
                token, access, deadline=deadline, keys=keys, kid=jwt.kid, key=key, now=now
            )
        return access

    def _checked(self, credentials: Credentials) -> Credentials:
        """`credentials` if they are ones this server verifies (as `read_credentials` makes
        them); a value built by hand with another scheme or a token outside the b64token
        grammar is refused as the header it stands for would be."""
        grammar = type(credentials) is Read or is_b64token(credentials.token)  # read: checked
        if credentials.scheme not in self._schemes or not grammar:
            exc: BearerError = (
                self._missing() if credentials.scheme not in self._schemes
                else InvalidRequestError(Reason.MALFORMED_HEADER)
            )  # fmt: skip
            self._refused(exc)
            raise exc
        return credentials


# Refusals raised once the signature held: the token's claims are then what its issuer signed.
_SIGNED = frozenset({
    Reason.CLAIM_TYPE, Reason.MISSING_CLAIM, Reason.AUDIENCE, Reason.CLAIM_VALUE, Reason.EXPIRED,
    Reason.NOT_YET_VALID, Reason.ISSUED_IN_FUTURE, Reason.TOO_OLD,
})  # fmt: skip


def _seen(
    exc: BearerError | UpstreamUnavailableError, jwt: UnverifiedJWT | None, signed: bool
) -> Seen | None:
    # Never the token: what it names, marked unverified unless the signature held (a refusal
    # raised before `jwt` was known carries its own `exc.seen`).
    if jwt is None:
        return None
    return seen_in(jwt.header, jwt.claims, verified=signed or exc.reason in _SIGNED)
