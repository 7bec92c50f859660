"""`ResourceServer`: verify access tokens for one or more trusted issuers, sync and async.

Everything but getting keys is pure and shared; the twins `verify`/`averify` (and
`authenticate`/`aauthenticate` over them) differ only in how they wait for a fetch: a thread's
single flight and the sync driver, or a task's and the async one. Verification order:
size cap, verified-token cache, strict parse, issuer by `iss` (unknown issuers cost no I/O), `alg`
allow-list, `typ`, key (fetched at most once, single-flight), key/alg agreement, signature (on a
failure, the JWKS is fetched again if its cool-down allows, and the token checked once more if the
issuer replaced the key under that `kid`), claims, scopes; then role-ID scopes are resolved
(`RoleResolver`), after the caches. With introspection (RFC 7662) configured, a token that is not
a JWS is introspected instead of refused; a JWT only on request: one of another issuer with
`introspect_foreign_jwts`, and one of a configured issuer, after it passed every check here, with
`introspect_jwts`. A JWT of a configured issuer that fails a check, and a JWS that fails the
strict parse, are refused here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from time import perf_counter
from types import TracebackType
from typing import Any

import httpx

from ._cache import TokenCache
from ._config import Issuer
from ._config_introspection import Introspection
from ._credentials import Credentials, read_credentials
from ._env import (
    check_names,
    introspection_from_env,
    issuers_from_env,
    server_options_from_env,
    store_from_env,
)
from ._errors import (
    BearerError,
    ConfigurationError,
    InvalidRequestError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
    Seen,
    UpstreamUnavailableError,
    seen_in,
)
from ._events import Events, KeysFetched, RolesResolved, TokenAccepted, TokenRefused
from ._fetch import DEFAULT_TIMEOUT, HTTP
from ._header import bearer_candidate, is_b64token
from ._introspecting import aintrospect, introspect
from ._introspection import Introspector, token_key
from ._jose import UnverifiedJWT
from ._jwks import JWKSStatus
from ._keys import Key
from ._keysource import KeySource
from ._limit import CallLimit
from ._logfields import log_event
from ._roles import RoleResolver
from ._store import MemoryStore, Store, StoreStatus, TieredStore
from ._token import AccessToken
from ._trusted import Trusted
from ._types import Clock
from ._validate import seconds
from ._verifier import Verifier

DEFAULT_MAX_TOKEN_BYTES = 8192
_LOG_ONLY = (log_event,)  # `events.accepted` when only the log lines subscribe
logger = logging.getLogger("bearerguard")  # log_event's logger for accepted tokens


# Keyword arguments of `from_env` that are `Issuer` fields (none is a `ResourceServer` argument).
_ISSUER_FIELDS = frozenset(field.name for field in dataclasses.fields(Issuer))


def _issuers(issuers: object) -> list[Issuer]:
    # An issuer URL given where an `Issuer` is meant would otherwise be iterated by character.
    if isinstance(issuers, Iterable) and not isinstance(issuers, str | bytes | bytearray):
        configs = list(issuers)
        if all(isinstance(config, Issuer) for config in configs):
            return configs
    raise ConfigurationError(
        "issuers must be an Issuer or a list of Issuers (Issuer(issuer=..., audience=...))",
        field="issuers",
    )


class ResourceServer:
    """Verifies bearer access tokens issued by the configured issuers.

    Construction only validates configuration: keys are fetched lazily on the first request, or
    ahead of time with `warm()`/`await awarm()`. With `introspection=Introspection(...)`, tokens
    that are not JWTs of a configured issuer are introspected (RFC 7662); `issuers` may then be
    empty. Pass your own `httpx.Client`/`httpx.AsyncClient`
    for proxies, mTLS or custom CAs; clients created here are closed by `close()`/`aclose()`.

    Example::

        server = ResourceServer(Issuer(issuer="https://idp.example.com", audience="api://orders"))
        token = server.authenticate(request.headers.get("authorization"))
        token.scopes  # frozenset({"orders.read"})
    """

    def __init__(
        self,
        issuers: Issuer | Iterable[Issuer] = (),
        *,
        introspection: Introspection | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        timeout: float | timedelta | httpx.Timeout = DEFAULT_TIMEOUT,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        token_cache_size: int = 10_000,
        clock: Clock = time.time,
        timer: Clock = time.monotonic,
        events: Events | None = None,
        store: Store | None = None,
    ) -> None:
        if events is None:
            events = Events()
            # The log lines of the README, for the kinds that have one: the others (role
            # resolutions, introspection calls) then cost one attribute test until watched.
            events.subscribe(log_event, TokenAccepted, TokenRefused, KeysFetched)
        self.events = events
        configs = [issuers] if isinstance(issuers, Issuer) else _issuers(issuers)
        if not configs and introspection is None:
            raise ConfigurationError("at least one issuer, or introspection, is required")
        self._trusted: dict[str, Trusted] = {}
        for config in configs:
            if config.issuer in self._trusted:
                raise ConfigurationError(f"issuer {config.issuer} is configured twice")
            self._trusted[config.issuer] = Trusted.compile(config, events)
        if store is not None and not isinstance(store, Store):
            raise ConfigurationError("store must be a Store (MemoryStore, RedisStore...)")
        if store is not None and not isinstance(store, MemoryStore | TieredStore):
            store = TieredStore(MemoryStore(timer=timer), store)  # a shared store: hits stay local
        self.store = store  # None: each cache keeps its own bounded MemoryStore
        self._introspector: Introspector | None = None
        self._revoker: Introspector | None = None  # introspect_jwts: verified JWTs are confirmed
        self._foreign: Introspector | None = None  # introspect_foreign_jwts: other issuers' JWTs
        if introspection is not None:
            self._introspector = self._introspector_for(introspection, timer=timer)
            if introspection.introspect_jwts:  # the same AS: the same bound on calls
                self._revoker = self._introspector_for(
                    introspection, confirms_jwts=True, limit=self._introspector.limit
                )
            if introspection.introspect_foreign_jwts:
                self._foreign = self._introspector
        if max_token_bytes <= 0 or token_cache_size < 0:
            raise ConfigurationError("max_token_bytes must be > 0 and token_cache_size >= 0")
        self.max_token_bytes = max_token_bytes
        # The pure steps, and the keys: what `bearerguard check` runs too (not for requests).
        self.verifier = Verifier(
            self._trusted,
            max_token_bytes,
            introspector=self._introspector,
            foreign=self._foreign,
            confirms_jwts=self._revoker is not None,
        )
        self._roles = {c.issuer: c.roles for c in configs if c.roles is not None}
        self._resolving = bool(self._roles) or bool(introspection and introspection.roles)
        self._tokens = TokenCache(token_cache_size)
        self._clock = clock
        self._timer = timer
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(seconds(timeout, "timeout"))
        self._http = HTTP(client=http_client, async_client=async_http_client, timeout=timeout)
        caches = [t.keys for t in self._trusted.values() if t.keys is not None]
        self.key_source = KeySource(caches, self._http, timer)
        for resolver in (*self._roles.values(), introspection and introspection.roles):
            if resolver:
                resolver.use_http(self._http)  # an HTTPRoleLookup runs on the server's clients
                # An empty MemoryStore is falsy (len 0): `is None`, not `or`.
                own = MemoryStore(resolver.max_roles, timer=timer) if store is None else store
                resolver.use_store(own)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, strict: bool = False, **kwargs: Any
    ) -> ResourceServer:
        """Build from `BEARERGUARD_*` variables (see the README); `kwargs` override them.

        `kwargs` are this class's arguments or, with one issuer, `Issuer` fields (`audience=`,
        `roles=`...), which replace that issuer's variables. A `BEARERGUARD_*` variable that
        nothing reads (a typo) is logged as a WARNING naming the closest known one, or is a
        `ConfigurationError` with `strict=True`.
        """
        environ = os.environ if environ is None else environ
        check_names(environ, strict=strict)
        return cls._from_variables(environ, kwargs)

    @classmethod
    def _from_variables(cls, environ: Mapping[str, str], kwargs: dict[str, Any]) -> ResourceServer:
        """`from_env` after the names were checked (the Flask extension checks its own)."""
        fields = {name: kwargs.pop(name) for name in list(kwargs) if name in _ISSUER_FIELDS}
        if "introspection" not in kwargs:
            kwargs["introspection"] = introspection_from_env(environ)
        if "store" not in kwargs:
            kwargs["store"] = store_from_env(environ)
        if "issuers" in kwargs:
            if fields:
                raise ConfigurationError(
                    f"{', '.join(sorted(fields))}: Issuer fields go to the environment's "
                    "issuer; with issuers=[...] set them on those Issuers"
                )
            issuers = kwargs.pop("issuers")
        else:
            optional = kwargs["introspection"] is not None
            issuers = issuers_from_env(environ, optional=optional, overrides=fields)
        return cls(issuers, **(server_options_from_env(environ) | kwargs))

    @property
    def issuers(self) -> tuple[Issuer, ...]:
        return tuple(trusted.config for trusted in self._trusted.values())

    def token_endpoint(self) -> str | None:
        """The first issuer's `token_endpoint`, once discovery has read its metadata, else None."""
        for trusted in self._trusted.values():
            metadata = trusted.keys.metadata if trusted.keys else None
            if metadata is not None and metadata.token_endpoint is not None:
                return metadata.token_endpoint
        return None

    def cache_sizes(self) -> dict[str, int]:
        """Entries held in this server's in-process caches, for gauges and health pages:
        `tokens` (verified tokens) and `keys` (published keys held, all issuers)."""
        keys = sum(len(c.keys.keys) for c in self.key_source.caches if c.keys is not None)
        return {"tokens": len(self._tokens), "keys": keys}

    # -- the twin entry points ---------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> AccessToken:
        """Verify the token of an `Authorization: Bearer …` header value (sync twin).

        Raises a `BearerError` (an RFC 6750 refusal) or `UpstreamUnavailableError` (503).
        """
        seen = self._seen(authorization)
        access = self._verify(seen) if isinstance(seen, Credentials) else seen
        return self._resolved(access) if self._resolving else access

    async def aauthenticate(self, authorization: str | None) -> AccessToken:
        """Verify the token of an `Authorization: Bearer …` header value (async twin)."""
        # A cache hit without role resolution returns before any await: no coroutine below.
        seen = self._seen(authorization)
        access = await self._averify(seen) if isinstance(seen, Credentials) else seen
        return await self._aresolved(access) if self._resolving else access

    def verify_credentials(self, credentials: Credentials) -> AccessToken:
        """Verify a request's `Credentials`, as its adapter read them (sync twin)."""
        access = self._hit(credentials.token) or self._verify(self._checked(credentials))
        return self._resolved(access) if self._resolving else access

    async def averify_credentials(self, credentials: Credentials) -> AccessToken:
        """Verify a request's `Credentials`, as its adapter read them (async twin)."""
        access = self._hit(credentials.token) or await self._averify(self._checked(credentials))
        return await self._aresolved(access) if self._resolving else access

    def verify(self, token: str) -> AccessToken:
        """Verify a bare access token (sync twin)."""
        access = self._hit(token) or self._verify(Credentials("Bearer", token))
        return self._resolved(access) if self._resolving else access

    async def averify(self, token: str) -> AccessToken:
        """Verify a bare access token (async twin)."""
        access = self._hit(token) or await self._averify(Credentials("Bearer", token))
        return await self._aresolved(access) if self._resolving else access

    def _cached(self, authorization: str | None) -> AccessToken | None:
        """The token of a header value verified before, if nothing is left to do for it (no
        role resolution): the middleware then answers without awaiting anything."""
        token = None if self._resolving else bearer_candidate(authorization)
        return None if token is None else self._hit(token)

    def _seen(self, authorization: str | None) -> AccessToken | Credentials:
        """The cached token of a header value verified before, else its credentials.

        A hit needs no header check beyond the scheme (see `bearer_candidate`); a miss checks
        the same string, so the verification below finds its hash computed.
        """
        token = bearer_candidate(authorization)
        if token is not None:
            if (hit := self._hit(token)) is not None:
                return hit
            if is_b64token(token):
                return Credentials("Bearer", token)
        try:  # raises: no header, another scheme, or a malformed one
            return read_credentials(authorization)
        except BearerError as exc:
            self._refused(exc)
            raise

    def _checked(self, credentials: Credentials) -> Credentials:
        """`credentials` if they are ones this server verifies (as `read_credentials` makes
        them); a value built by hand with another scheme or a token outside the b64token
        grammar is refused as the header it stands for would be."""
        if credentials.scheme != "Bearer" or not is_b64token(credentials.token):
            exc: BearerError = (
                MissingTokenError() if credentials.scheme != "Bearer"
                else InvalidRequestError(Reason.MALFORMED_HEADER)
            )  # fmt: skip
            self._refused(exc)
            raise exc
        return credentials

    def _refused(
        self, exc: BearerError | UpstreamUnavailableError, seen: Seen | None = None
    ) -> None:
        if self.events.refused:
            self.events.emit(TokenRefused(exc, exc.seen or seen))

    def _resolved(self, access: AccessToken) -> AccessToken:
        if (roles := self._roles_of(access)) is not None:
            started = perf_counter() if self.events.roles else 0.0
            try:
                resolved, count, looked_up = roles.counted(access, self._timer())
            except UpstreamUnavailableError as exc:
                self._roles_failed(access, roles, exc, started)
                raise
            if count and self.events.roles:
                duration = perf_counter() - started
                self.events.emit(RolesResolved(access.issuer, count, looked_up, None, duration))
            return resolved
        return access

    async def _aresolved(self, access: AccessToken) -> AccessToken:
        if (roles := self._roles_of(access)) is not None:
            started = perf_counter() if self.events.roles else 0.0
            try:
                resolved, count, looked_up = await roles.acounted(access, self._timer())
            except UpstreamUnavailableError as exc:
                self._roles_failed(access, roles, exc, started)
                raise
            if count and self.events.roles:
                duration = perf_counter() - started
                self.events.emit(RolesResolved(access.issuer, count, looked_up, None, duration))
            return resolved
        return access

    def _roles_failed(
        self,
        access: AccessToken,
        roles: RoleResolver,
        exc: UpstreamUnavailableError,
        started: float,
    ) -> None:
        if self.events.roles:
            count = len(roles.role_ids(access))
            duration = perf_counter() - started
            event = RolesResolved(access.issuer, count, count, exc.what, duration)
            self.events.emit(event)
        self._refused(exc, _seen_of(access))

    def _roles_of(self, access: AccessToken) -> RoleResolver | None:
        # The caches hold tokens as issued; role privileges are applied per request (they
        # change at the AS at any time) from the resolver's own short-lived cache.
        if access.source == "introspection":
            return self._introspector.config.roles if self._introspector else None
        return self._roles.get(access.issuer)

    def _hit(self, token: str) -> AccessToken | None:
        """The verified-token cache's answer for `token`: the one lookup of every entry point."""
        events = self.events
        if not events.hits:  # nobody counts hits: nothing but the lookup
            return self._tokens.get_token(token, self._clock, self._timer)
        started = perf_counter()
        hit = self._tokens.get_token(token, self._clock, self._timer)
        if hit is not None:
            duration = perf_counter() - started
            events.emit(TokenAccepted(hit.source, hit.issuer, hit.client_id, True, duration))
        return hit

    def _accepted(self, access: AccessToken, started: float) -> AccessToken:
        """`access`, reported as verified now (a miss of the verified-token cache)."""
        accepted = self.events.accepted
        # The log subscriber alone writes nothing for an accepted token but at DEBUG: no event
        # is built for it otherwise (~0.5 µs a miss, the cost of all the rest of this seam).
        if accepted and (accepted != _LOG_ONLY or logger.isEnabledFor(logging.DEBUG)):
            duration = perf_counter() - started
            event = TokenAccepted(access.source, access.issuer, access.client_id, False, duration)
            self.events.emit(event)
        return access

    def _verify(self, credentials: Credentials) -> AccessToken:
        """Everything after a cache miss (sync twin)."""
        token, jwt, signed, started = credentials.token, None, False, perf_counter()
        try:
            route = self.verifier.prepare(token)
            if isinstance(route, Introspector):
                return self._accepted(self._introspect(route, token), started)
            trusted, jwt = route
            key = self.key_source.key(trusted, jwt)
            try:
                access = self._accept(token, trusted, jwt, key)
            except InvalidTokenError as exc:  # the issuer may have replaced the key of that kid
                access = self._accept(
                    token, trusted, jwt, self.key_source.replaced(trusted, jwt, key, exc)
                )
            signed = True
            if self._revoker is not None:  # central revocation: the AS must still say active
                self._introspect(self._revoker, token)
            return self._accepted(access, started)
        except (BearerError, UpstreamUnavailableError) as exc:
            self._refused(exc, _seen(exc, jwt, signed))
            raise

    async def _averify(self, credentials: Credentials) -> AccessToken:
        """Everything after a cache miss (async twin)."""
        token, jwt, signed, started = credentials.token, None, False, perf_counter()
        try:
            route = self.verifier.prepare(token)
            if isinstance(route, Introspector):
                return self._accepted(await self._aintrospect(route, token), started)
            trusted, jwt = route
            key = trusted.ready_key(jwt, self._timer) or await self.key_source.akey(trusted, jwt)
            try:
                access = self._accept(token, trusted, jwt, key)
            except InvalidTokenError as exc:
                key = await self.key_source.areplaced(trusted, jwt, key, exc)
                access = self._accept(token, trusted, jwt, key)
            signed = True
            if self._revoker is not None:
                await self._aintrospect(self._revoker, token)
            return self._accepted(access, started)
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
        if introspector is not self._revoker:
            now = self._clock()
            self._tokens.put_token(
                token, access, deadline=until, keys=None, kid=None, key=None, now=now
            )
        return access

    # -- after the key: the signature and claims, and the cache -----------------------

    def _accept(self, token: str, trusted: Trusted, jwt: UnverifiedJWT, key: Key) -> AccessToken:
        now = self._clock()
        access, deadline = trusted.accept(jwt, key, now)
        if self._revoker is None:  # else every use must reach the introspection cache
            keys = None if key is trusted.secret else trusted.keys
            self._tokens.put_token(
                token, access, deadline=deadline, keys=keys, kid=jwt.kid, key=key, now=now
            )
        return access

    # -- key warm-up and health --------------------------------------------------------------

    def warm(self) -> list[JWKSStatus]:
        """Fetch every issuer's keys now (at start-up, say); never raises for a down issuer."""
        return self.key_source.warm()

    async def awarm(self) -> list[JWKSStatus]:
        """Fetch every issuer's keys now, concurrently."""
        return await self.key_source.awarm()

    def status(self) -> list[JWKSStatus]:
        """The state of each issuer's keys, for health checks: age, kids, last error."""
        return self.key_source.status()

    def store_status(self) -> StoreStatus:
        """The state of the shared store (Redis: up or down, since when, the last error), for
        health checks; the in-memory store is always up. A down store costs requests nothing
        but extra calls to the authorization server (see the README, "Stores")."""
        return (_MEMORY if self.store is None else self.store).status()

    def _introspector_for(
        self,
        config: Introspection,
        *,
        confirms_jwts: bool = False,
        limit: CallLimit | None = None,
        timer: Clock = time.monotonic,
    ) -> Introspector:
        # An issuer configured for JWTs too has discovered its metadata already: reuse it.
        trusted = self._trusted.get(config.issuer) if config.issuer else None
        keys = trusted.keys if trusted else None
        metadata = (lambda: keys.metadata) if keys else None
        return Introspector(
            config,
            metadata=metadata,
            confirms_jwts=confirms_jwts,
            limit=limit,
            timer=timer,
            store=self.store,
        )

    def close(self) -> None:
        """Close the sync HTTP client this server created (an injected one is left open)."""
        self._http.close()

    async def aclose(self) -> None:
        """Close the HTTP clients this server created."""
        await self._http.aclose()

    def __enter__(self) -> ResourceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> ResourceServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


_MEMORY = MemoryStore(1)  # the status of stores kept in the process: always up


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


def _seen_of(access: AccessToken) -> Seen:
    return Seen("token", access.issuer, None, None, access.client_id)
