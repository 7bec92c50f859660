"""`ResourceServer`: verify access tokens for one or more trusted issuers, sync and async.

Everything but getting keys is pure and shared; the twins `verify`/`averify` (and
`authenticate`/`aauthenticate` over them) differ only in how they wait for a fetch: a
`threading.Lock` and `run_sync`, or an `asyncio.Lock` and `run_async`. Verification order:
size cap, verified-token cache, strict parse, issuer by `iss` (unknown issuers cost no I/O), `alg`
allow-list, `typ`, key (fetched at most once, single-flight), key/alg agreement, signature,
claims, scopes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx

from ._cache import TokenCache
from ._claims import ClaimsPolicy, check_claims, check_type
from ._config import Issuer, seconds
from ._env import issuers_from_env, server_options_from_env
from ._errors import (
    BearerError,
    ConfigurationError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
    UpstreamUnavailableError,
)
from ._fetch import DEFAULT_TIMEOUT, run_async, run_sync
from ._header import extract_bearer
from ._jose import UnverifiedJWT, parse
from ._jwks import JWKSCache, JWKSStatus
from ._keys import Key
from ._scopes import read_scopes
from ._token import AccessToken, client_id_of, freeze
from ._types import Clock

logger = logging.getLogger("bearerguard")

DEFAULT_MAX_TOKEN_BYTES = 8192


@dataclass(frozen=True, slots=True)
class _Trusted:
    """One configured issuer, compiled for the request path."""

    config: Issuer
    policy: ClaimsPolicy
    algorithms: frozenset[str]
    keys: JWKSCache | None
    secret: Key | None


class ResourceServer:
    """Verifies bearer access tokens issued by the configured issuers.

    Construction only validates configuration: keys are fetched lazily on the first request, or
    ahead of time with `warm()`/`await awarm()`. Pass your own `httpx.Client`/`httpx.AsyncClient`
    for proxies, mTLS or custom CAs; clients created here are closed by `close()`/`aclose()`.

    Example::

        server = ResourceServer(Issuer(issuer="https://idp.example.com", audience="api://orders"))
        token = server.authenticate(request.headers.get("authorization"))
        token.scopes  # frozenset({"orders.read"})
    """

    def __init__(
        self,
        issuers: Issuer | Iterable[Issuer],
        *,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        timeout: float | timedelta | httpx.Timeout = DEFAULT_TIMEOUT,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        token_cache_size: int = 10_000,
        clock: Clock = time.time,
        timer: Clock = time.monotonic,
    ) -> None:
        configs = [issuers] if isinstance(issuers, Issuer) else list(issuers)
        if not configs:
            raise ConfigurationError("at least one issuer is required")
        self._trusted: dict[str, _Trusted] = {}
        for config in configs:
            if config.issuer in self._trusted:
                raise ConfigurationError(f"issuer {config.issuer} is configured twice")
            self._trusted[config.issuer] = _compile(config)
        if max_token_bytes <= 0 or token_cache_size < 0:
            raise ConfigurationError("max_token_bytes must be > 0 and token_cache_size >= 0")
        self.max_token_bytes = max_token_bytes
        self._tokens = TokenCache(token_cache_size)
        self._clock = clock
        self._timer = timer
        self._timeout = (
            timeout
            if isinstance(timeout, httpx.Timeout)
            else httpx.Timeout(seconds(timeout, "timeout"))
        )
        self._client = http_client
        self._owns_client = http_client is None
        self._aclient = async_http_client
        self._owns_aclient = async_http_client is None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self._client_lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> ResourceServer:
        """Build from `BEARERGUARD_*` variables (see the README); `kwargs` override them."""
        environ = os.environ if environ is None else environ
        options = server_options_from_env(environ) | kwargs
        return cls(issuers_from_env(environ), **options)

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
        return self.verify(_bearer(authorization))

    async def aauthenticate(self, authorization: str | None) -> AccessToken:
        """Verify the token of an `Authorization: Bearer …` header value (async twin)."""
        return await self.averify(_bearer(authorization))

    def verify(self, token: str) -> AccessToken:
        """Verify a bare access token (sync twin)."""
        if (hit := self._tokens.get(token, self._clock(), self._timer())) is not None:
            return hit
        jwt = None
        try:
            trusted, jwt = self._prepare(token)
            key = _static_key(trusted, jwt) or self._key(trusted.keys, jwt)  # type: ignore[arg-type]
            return self._accept(token, trusted, jwt, key)
        except (BearerError, UpstreamUnavailableError) as exc:
            _log_refusal(exc, jwt)
            raise

    async def averify(self, token: str) -> AccessToken:
        """Verify a bare access token (async twin)."""
        if (hit := self._tokens.get(token, self._clock(), self._timer())) is not None:
            return hit
        jwt = None
        try:
            trusted, jwt = self._prepare(token)
            key = _static_key(trusted, jwt) or await self._akey(trusted.keys, jwt)  # type: ignore[arg-type]
            return self._accept(token, trusted, jwt, key)
        except (BearerError, UpstreamUnavailableError) as exc:
            _log_refusal(exc, jwt)
            raise

    # -- keys: the only place the twins differ -----------------------------------------------

    def _key(self, keys: JWKSCache, jwt: UnverifiedJWT) -> Key:
        kid, alg = jwt.kid, jwt.alg
        key = keys.fresh(kid, alg, self._timer())
        if key is not None:
            return key
        if not keys.lock.acquire(blocking=False):
            # Another thread is fetching: answer from the last good keys if they allow it.
            if (key := keys.stale(kid, alg, self._timer())) is not None:
                return key
            keys.lock.acquire()
        try:
            return run_sync(keys.key_flow(kid, alg, self._timer()), self._http())
        finally:
            keys.lock.release()

    async def _akey(self, keys: JWKSCache, jwt: UnverifiedJWT) -> Key:
        kid, alg = jwt.kid, jwt.alg
        key = keys.fresh(kid, alg, self._timer())
        if key is not None:
            return key
        lock = keys.alock()
        if lock.locked() and (key := keys.stale(kid, alg, self._timer())) is not None:
            return key
        async with lock:
            return await run_async(keys.key_flow(kid, alg, self._timer()), self._ahttp())

    # -- the pure steps ----------------------------------------------------------------------

    def _prepare(self, token: str) -> tuple[_Trusted, UnverifiedJWT]:
        if len(token) > self.max_token_bytes:
            raise InvalidTokenError(Reason.TOO_LARGE)  # before any other work
        jwt = parse(token)
        iss = jwt.claims.get("iss")
        trusted = self._trusted.get(iss) if isinstance(iss, str) else None
        if trusted is None:
            raise InvalidTokenError(Reason.UNKNOWN_ISSUER)  # no network traffic for strangers
        if jwt.alg not in trusted.algorithms:
            raise InvalidTokenError(Reason.ALGORITHM)
        check_type(jwt.header, rfc9068=trusted.config.rfc9068)
        return trusted, jwt

    def _accept(self, token: str, trusted: _Trusted, jwt: UnverifiedJWT, key: Key) -> AccessToken:
        if not key.accepts(jwt.alg):
            raise InvalidTokenError(Reason.ALGORITHM)  # e.g. an RSA key named by an ES256 token
        if not key.verify(jwt.alg, jwt.signing_input, jwt.signature):
            raise InvalidTokenError(Reason.BAD_SIGNATURE)
        now = self._clock()
        claims = jwt.claims
        deadline = check_claims(claims, trusted.policy, now)
        exp = claims.get("exp")
        access = AccessToken(
            issuer=trusted.config.issuer,
            subject=claims.get("sub"),
            client_id=client_id_of(claims),
            scopes=read_scopes(claims, trusted.config.scope_claims),
            claims=freeze(claims),
            expires_at=None if exp is None else float(exp),
            source="jwt",
        )
        keys = None if key is trusted.secret else trusted.keys
        self._tokens.put(token, access, deadline=deadline, keys=keys, kid=jwt.kid, key=key, now=now)
        logger.debug("accepted token of client %r from %s", access.client_id, access.issuer)
        return access

    # -- key warm-up and health --------------------------------------------------------------

    def warm(self) -> list[JWKSStatus]:
        """Fetch every issuer's keys now (at start-up, say); never raises for a down issuer."""
        for keys in self._key_caches():
            with keys.lock:
                run_sync(keys.refresh_flow(self._timer()), self._http())
        return self.status()

    async def awarm(self) -> list[JWKSStatus]:
        """Fetch every issuer's keys now, concurrently."""

        async def one(keys: JWKSCache) -> None:
            async with keys.alock():
                await run_async(keys.refresh_flow(self._timer()), self._ahttp())

        await asyncio.gather(*(one(keys) for keys in self._key_caches()))
        return self.status()

    def status(self) -> list[JWKSStatus]:
        """The state of each issuer's keys, for health checks: age, kids, last error."""
        now = self._timer()
        return [keys.status(now) for keys in self._key_caches()]

    def _key_caches(self) -> list[JWKSCache]:
        return [t.keys for t in self._trusted.values() if t.keys is not None]

    # -- HTTP clients ------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=self._timeout)
        return self._client

    def _ahttp(self) -> httpx.AsyncClient:
        if not self._owns_aclient:
            return self._aclient  # type: ignore[return-value]
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            # An AsyncClient's connections belong to one event loop.
            self._aclient, self._aclient_loop = httpx.AsyncClient(timeout=self._timeout), loop
        return self._aclient

    def close(self) -> None:
        """Close the sync HTTP client this server created (an injected one is left open)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the HTTP clients this server created."""
        if self._owns_aclient and self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = self._aclient_loop = None
        self.close()

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


def _compile(config: Issuer) -> _Trusted:
    keys = None
    if config.uses_jwks:
        keys = JWKSCache(
            config.issuer,
            jwks_uri=config.jwks_uri,
            discovery_urls=config.discovery_urls,
            policy=config.jwks_policy,
        )
    secret = config.secret_bytes
    return _Trusted(
        config=config,
        policy=config.claims_policy(),
        algorithms=frozenset(config.algorithms),
        keys=keys,
        secret=None if secret is None else Key.from_secret(secret),
    )


def _static_key(trusted: _Trusted, jwt: UnverifiedJWT) -> Key | None:
    # HS* tokens use the configured secret; every other allowed alg has a JWKS (see Issuer).
    return trusted.secret if jwt.alg.startswith("HS") else None


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
