"""`ResourceServer`: verify access tokens for one or more trusted issuers, sync and async.

Everything but getting keys is pure and shared; the twins `verify`/`averify` (and
`authenticate`/`aauthenticate` over them) differ only in how they wait for a fetch: a
`threading.Lock` and the sync driver, or an `asyncio.Lock` and the async one. Verification order:
size cap, verified-token cache, strict parse, issuer by `iss` (unknown issuers cost no I/O), `alg`
allow-list, `typ`, key (fetched at most once, single-flight), key/alg agreement, signature,
claims, scopes; then role-ID scopes are resolved (`RoleResolver`), after the caches. With
introspection (RFC 7662) configured, every token that is not a JWT of a
configured issuer is introspected instead of refused (and, with `introspect_jwts`, those too).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, cast

import httpx

from ._cache import TokenCache
from ._claims import check_type
from ._config import Introspection, Issuer, seconds
from ._env import introspection_from_env, issuers_from_env, server_options_from_env
from ._errors import (
    BearerError,
    ConfigurationError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
    UpstreamUnavailableError,
)
from ._fetch import DEFAULT_TIMEOUT, HTTP
from ._header import bearer_candidate, extract_bearer, is_b64token
from ._introspection import Introspector, token_key
from ._jose import UnverifiedJWT, parse
from ._jwks import JWKSCache, JWKSStatus
from ._keys import Key
from ._roles import RoleResolver
from ._token import AccessToken, client_id_of
from ._trusted import Trusted
from ._types import Clock

logger = logging.getLogger("bearerguard")

DEFAULT_MAX_TOKEN_BYTES = 8192


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
    ) -> None:
        configs = [issuers] if isinstance(issuers, Issuer) else list(issuers)
        if not configs and introspection is None:
            raise ConfigurationError("at least one issuer, or introspection, is required")
        self._trusted: dict[str, Trusted] = {}
        for config in configs:
            if config.issuer in self._trusted:
                raise ConfigurationError(f"issuer {config.issuer} is configured twice")
            self._trusted[config.issuer] = Trusted.compile(config)
        self._introspector: Introspector | None = None
        self._revoker: Introspector | None = None  # introspect_jwts: verified JWTs are confirmed
        if introspection is not None:
            self._introspector = self._introspector_for(introspection)
            if introspection.introspect_jwts:
                self._revoker = self._introspector_for(introspection, confirms_jwts=True)
        if max_token_bytes <= 0 or token_cache_size < 0:
            raise ConfigurationError("max_token_bytes must be > 0 and token_cache_size >= 0")
        self.max_token_bytes = max_token_bytes
        self._roles = {c.issuer: c.roles for c in configs if c.roles is not None}
        self._resolving = bool(self._roles) or bool(introspection and introspection.roles)
        self._tokens = TokenCache(token_cache_size)
        self._clock = clock
        self._timer = timer
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(seconds(timeout, "timeout"))
        self._http = HTTP(client=http_client, async_client=async_http_client, timeout=timeout)
        for resolver in (*self._roles.values(), introspection and introspection.roles):
            if resolver:
                resolver.use_http(self._http)  # an HTTPRoleLookup runs on the server's clients

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> ResourceServer:
        """Build from `BEARERGUARD_*` variables (see the README); `kwargs` override them."""
        environ = os.environ if environ is None else environ
        introspection = introspection_from_env(environ)
        options = {"introspection": introspection} | server_options_from_env(environ) | kwargs
        return cls(issuers_from_env(environ, optional=introspection is not None), **options)

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

    # -- the twin entry points ---------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> AccessToken:
        """Verify the token of an `Authorization: Bearer …` header value (sync twin).

        Raises a `BearerError` (an RFC 6750 refusal) or `UpstreamUnavailableError` (503).
        """
        seen = self._seen(authorization)
        access = self._verify(seen) if isinstance(seen, str) else seen
        return self._resolved(access) if self._resolving else access

    async def aauthenticate(self, authorization: str | None) -> AccessToken:
        """Verify the token of an `Authorization: Bearer …` header value (async twin)."""
        # A cache hit without role resolution returns before any await: no coroutine below.
        seen = self._seen(authorization)
        access = await self._averify(seen) if isinstance(seen, str) else seen
        return await self._aresolved(access) if self._resolving else access

    def verify(self, token: str) -> AccessToken:
        """Verify a bare access token (sync twin)."""
        access = self._hit(token) or self._verify(token)
        return self._resolved(access) if self._resolving else access

    async def averify(self, token: str) -> AccessToken:
        """Verify a bare access token (async twin)."""
        access = self._hit(token) or await self._averify(token)
        return await self._aresolved(access) if self._resolving else access

    def _cached(self, authorization: str | None) -> AccessToken | None:
        """The token of a header value verified before, if nothing is left to do for it (no
        role resolution): the middleware then answers without awaiting anything."""
        token = None if self._resolving else bearer_candidate(authorization)
        return None if token is None else self._hit(token)

    def _seen(self, authorization: str | None) -> AccessToken | str:
        """The cached token of a header value verified before, else its checked bearer token.

        A hit needs no header check beyond the scheme (see `bearer_candidate`); a miss checks
        the same string, so the verification below finds its hash computed.
        """
        token = bearer_candidate(authorization)
        if token is not None:
            if (hit := self._hit(token)) is not None:
                return hit
            if is_b64token(token):
                return token
        return _bearer(authorization)  # raises: no header, another scheme, or a malformed one

    def _resolved(self, access: AccessToken) -> AccessToken:
        if (roles := self._roles_of(access)) is not None:
            return roles.resolve(access, self._timer())
        return access

    async def _aresolved(self, access: AccessToken) -> AccessToken:
        if (roles := self._roles_of(access)) is not None:
            return await roles.aresolve(access, self._timer())
        return access

    def _roles_of(self, access: AccessToken) -> RoleResolver | None:
        # The caches hold tokens as issued; role privileges are applied per request (they
        # change at the AS at any time) from the resolver's own short-lived cache.
        if access.source == "introspection":
            return self._introspector.config.roles if self._introspector else None
        return self._roles.get(access.issuer)

    def _hit(self, token: str) -> AccessToken | None:
        """The verified-token cache's answer for `token`: the one lookup of every entry point."""
        return self._tokens.get_token(token, self._clock, self._timer)

    def _verify(self, token: str) -> AccessToken:
        """Everything after a cache miss (sync twin)."""
        jwt = None
        try:
            route = self._prepare(token)
            if isinstance(route, Introspector):
                return self._introspect(route, token)
            trusted, jwt = route
            key = self._key_for(trusted, jwt)
            access = self._accept(token, trusted, jwt, key)
            if self._revoker is not None:  # central revocation: the AS must still say active
                self._introspect(self._revoker, token)
            return access
        except (BearerError, UpstreamUnavailableError) as exc:
            _log_refusal(exc, jwt)
            raise

    async def _averify(self, token: str) -> AccessToken:
        """Everything after a cache miss (async twin)."""
        jwt = None
        try:
            route = self._prepare(token)
            if isinstance(route, Introspector):
                return await self._aintrospect(route, token)
            trusted, jwt = route
            key = trusted.ready_key(jwt, self._timer) or await self._akey(trusted, jwt)
            access = self._accept(token, trusted, jwt, key)
            if self._revoker is not None:
                await self._aintrospect(self._revoker, token)
            return access
        except (BearerError, UpstreamUnavailableError) as exc:
            _log_refusal(exc, jwt)
            raise

    # -- keys and introspection: the only places the twins differ -----------------------

    def _key_for(self, trusted: Trusted, jwt: UnverifiedJWT) -> Key:
        """The key for `jwt` (sync twin): the shared secret, or one from the JWKS."""
        return trusted.ready_key(jwt, self._timer) or self._key(trusted, jwt)

    # `_key` and `_akey` run when `Trusted.ready_key` found no key: the issuer's JWKS is past its
    # TTL, or `kid` is not in it (rotation, or a stranger). At most one fetch at a time.

    def _key(self, trusted: Trusted, jwt: UnverifiedJWT) -> Key:
        keys, kid, alg = cast(JWKSCache, trusted.keys), jwt.kid, jwt.alg  # not None: see ready_key
        if not keys.lock.acquire(blocking=False):
            # Another thread is fetching: answer from the last good keys if they allow it.
            if (key := keys.stale(kid, alg, self._timer())) is not None:
                return key
            keys.lock.acquire()
        try:
            return self._http.run(keys.key_flow(kid, alg, self._timer()))
        finally:
            keys.lock.release()

    async def _akey(self, trusted: Trusted, jwt: UnverifiedJWT) -> Key:
        keys, kid, alg = cast(JWKSCache, trusted.keys), jwt.kid, jwt.alg  # not None: see ready_key
        lock = keys.alock()
        if lock.locked() and (key := keys.stale(kid, alg, self._timer())) is not None:
            return key
        async with lock:
            return await self._http.arun(keys.key_flow(kid, alg, self._timer()))

    def _introspect(self, introspector: Introspector, token: str) -> AccessToken:
        key = token_key(token)
        if (hit := introspector.cached(key, self._clock())) is not None:
            return hit

        def call() -> AccessToken:  # one per token at a time; it checks the cache again
            return self._http.run(introspector.flow(token, key, self._clock()))

        return introspector.flights.run(key, call)

    async def _aintrospect(self, introspector: Introspector, token: str) -> AccessToken:
        key = token_key(token)
        if (hit := introspector.cached(key, self._clock())) is not None:
            return hit

        async def call() -> AccessToken:
            return await self._http.arun(introspector.flow(token, key, self._clock()))

        return await introspector.flights.arun(key, call)

    # -- the pure steps ----------------------------------------------------------------------

    def _prepare(self, token: str) -> tuple[Trusted, UnverifiedJWT] | Introspector:
        """The issuer that verifies `token` locally, or the introspector that must be asked."""
        if len(token) > self.max_token_bytes:
            raise InvalidTokenError(Reason.TOO_LARGE)  # before any other work
        try:
            jwt = parse(token)
        except InvalidTokenError:
            if self._introspector is None:
                raise
            return self._introspector  # not a JWT: opaque, only the AS can tell
        iss = jwt.claims.get("iss")
        trusted = self._trusted.get(iss) if isinstance(iss, str) else None
        if trusted is None:
            if self._introspector is not None:
                return self._introspector  # a JWT of an issuer we do not verify ourselves
            raise InvalidTokenError(Reason.UNKNOWN_ISSUER)  # no network traffic for strangers
        if jwt.alg not in trusted.algorithms:
            raise InvalidTokenError(Reason.ALGORITHM)
        check_type(jwt.header, rfc9068=trusted.config.rfc9068)
        return trusted, jwt

    def _accept(self, token: str, trusted: Trusted, jwt: UnverifiedJWT, key: Key) -> AccessToken:
        now = self._clock()
        access, deadline = trusted.accept(jwt, key, now)
        if self._revoker is None:  # else every use must reach the introspection cache
            keys = None if key is trusted.secret else trusted.keys
            self._tokens.put_token(
                token, access, deadline=deadline, keys=keys, kid=jwt.kid, key=key, now=now
            )
        logger.debug("accepted token of client %r from %s", access.client_id, access.issuer)
        return access

    # -- key warm-up and health --------------------------------------------------------------

    def warm(self) -> list[JWKSStatus]:
        """Fetch every issuer's keys now (at start-up, say); never raises for a down issuer."""
        for keys in self._key_caches():
            with keys.lock:
                self._http.run(keys.refresh_flow(self._timer()))
        return self.status()

    async def awarm(self) -> list[JWKSStatus]:
        """Fetch every issuer's keys now, concurrently."""

        async def one(keys: JWKSCache) -> None:
            async with keys.alock():
                await self._http.arun(keys.refresh_flow(self._timer()))

        await asyncio.gather(*(one(keys) for keys in self._key_caches()))
        return self.status()

    def status(self) -> list[JWKSStatus]:
        """The state of each issuer's keys, for health checks: age, kids, last error."""
        now = self._timer()
        return [keys.status(now) for keys in self._key_caches()]

    def _introspector_for(
        self, config: Introspection, *, confirms_jwts: bool = False
    ) -> Introspector:
        # An issuer configured for JWTs too has discovered its metadata already: reuse it.
        trusted = self._trusted.get(config.issuer) if config.issuer else None
        keys = trusted.keys if trusted else None
        metadata = (lambda: keys.metadata) if keys else None
        return Introspector(config, metadata=metadata, confirms_jwts=confirms_jwts)

    def _key_caches(self) -> list[JWKSCache]:
        return [t.keys for t in self._trusted.values() if t.keys is not None]

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


def _bearer(authorization: str | None) -> str:
    try:
        return extract_bearer(authorization)
    except BearerError as exc:
        _log_refusal(exc, None)
        raise


def _log_refusal(exc: BearerError | UpstreamUnavailableError, jwt: UnverifiedJWT | None) -> None:
    # The token itself is never logged; iss and kid are unverified, so they are logged with %r.
    iss = jwt.claims.get("iss") if jwt else None
    kid = jwt.kid if jwt else None
    client = client_id_of(jwt.claims) if jwt else None
    level = logging.INFO if isinstance(exc, MissingTokenError) else logging.WARNING
    logger.log(level, "refused: %s iss=%r kid=%r client_id=%r", exc.reason.name, iss, kid, client)
