"""`ResourceServer`: verify access tokens for one or more trusted issuers, sync and async.

The public surface: construction (`_assembly` puts the parts together), the twin entry points
(`authenticate`/`aauthenticate` over a header, `verify_credentials`/`averify_credentials` over a
request's `Credentials`, `verify`/`averify` over a bare token), health and warm-up. Underneath,
`_engine` runs the verification, in the order `_verifier` names: size cap, verified-token cache,
strict parse, issuer by `iss` (unknown issuers cost no I/O), `alg` allow-list, `typ`, key
(fetched at most once, single-flight, refetched once if the issuer replaced it), signature,
claims, scopes; then DPoP's binding and replay checks, introspection where it is configured
(opaque tokens, `introspect_foreign_jwts`, `introspect_jwts`) and role resolution.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx

from ._assembly import arguments_from_env, assemble, wire_roles
from ._cache import TokenCache
from ._config import Issuer
from ._config_introspection import Introspection
from ._credentials import Credentials
from ._dpop import DPoPPolicy
from ._engine import Engine
from ._env import check_names
from ._errors import (
    ConfigurationError,
)
from ._events import Events, KeysFetched, TokenAccepted, TokenRefused
from ._fetch import DEFAULT_TIMEOUT, HTTP
from ._jwks import JWKSStatus
from ._keysource import KeySource
from ._logfields import log_event
from ._resolving import Roles
from ._sender import DPoPMode, sender_check
from ._store import MemoryStore, Store, StoreStatus, TieredStore
from ._token import AccessToken
from ._types import Clock
from ._validate import seconds
from ._verifier import Verifier

DEFAULT_MAX_TOKEN_BYTES = 8192


class ResourceServer(Engine):
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
        dpop: DPoPMode | DPoPPolicy = "off",
        dpop_store: Store | None = None,
    ) -> None:
        if events is None:
            events = Events()
            # The log lines of the README, for the kinds that have one: the others (role
            # resolutions, introspection calls) then cost one attribute test until watched.
            events.subscribe(log_event, TokenAccepted, TokenRefused, KeysFetched)
        self.events = events
        events.watch(self._events_changed)  # a hit reads `_hits_watched`, not the emitter
        parts = assemble(issuers, introspection, store, events, timer)
        if max_token_bytes <= 0 or token_cache_size < 0:
            raise ConfigurationError("max_token_bytes must be > 0 and token_cache_size >= 0")
        self._trusted = parts.trusted
        self._introspector = parts.introspector
        self._revoker = parts.revoker  # introspect_jwts: verified JWTs are confirmed
        self.store = parts.store  # None: each cache keeps its own bounded MemoryStore
        self.max_token_bytes = max_token_bytes
        # The pure steps, and the keys: what `bearerguard check` runs too (not for requests).
        self.verifier = Verifier(
            parts.trusted,
            max_token_bytes,
            introspector=parts.introspector,
            foreign=parts.foreign,
            confirms_jwts=parts.revoker is not None,
        )
        self._tokens = TokenCache(token_cache_size)
        # DPoP (RFC 9449): the schemes read, and the proof, binding and replay checks.
        if dpop_store is None and dpop != "off" and isinstance(parts.store, TieredStore):
            dpop_store = parts.store  # a fleet's store: a proof replayed to another replica too
        self._sender = sender_check(dpop, dpop_store)
        self.dpop: DPoPPolicy | None = self._sender.policy if self._sender else None
        self._schemes = self._sender.schemes if self._sender else ("Bearer",)
        self._clock = clock
        self._timer = timer
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(seconds(timeout, "timeout"))
        self._http = HTTP(client=http_client, async_client=async_http_client, timeout=timeout)
        caches = [t.keys for t in parts.trusted.values() if t.keys is not None]
        self.key_source = KeySource(caches, self._http, timer)
        wire_roles(parts, self._http, timer)
        self._roles = Roles(parts.roles, parts.introspection_roles, events, self._refused, timer)
        self._resolving = self._roles.active

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
        issuers, arguments = arguments_from_env(environ, kwargs)
        return cls(issuers, **arguments)

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

        Raises a `BearerError` (an RFC 6750 refusal) or `UpstreamUnavailableError` (503). With
        `dpop=` on, a DPoP-bound token is refused here (a header alone carries no proof: the
        middlewares call `verify_credentials` with the whole request).
        """
        seen = self._seen(authorization)
        if isinstance(seen, Credentials):
            sender = self._sender
            seen = self._verify(seen) if sender is None else self._constrained(sender, seen)
        return self._roles.resolve(seen) if self._resolving else seen

    async def aauthenticate(self, authorization: str | None) -> AccessToken:
        """Verify the token of an `Authorization: Bearer …` header value (async twin)."""
        # A cache hit without role resolution returns before any await: no coroutine below.
        seen = self._seen(authorization)
        if isinstance(seen, Credentials):
            sender = self._sender
            seen = await (
                self._averify(seen) if sender is None else self._aconstrained(sender, seen)
            )
        return await self._roles.aresolve(seen) if self._resolving else seen

    def verify_credentials(self, credentials: Credentials) -> AccessToken:
        """Verify a request's `Credentials`, as its adapter read them (sync twin)."""
        if (sender := self._sender) is None:  # a cached token only for the scheme it came with
            access = self._hit(credentials.token) if credentials.scheme == "Bearer" else None
            if not access or access._bound:  # a miss, or a bound token: its binding
                access = self._bearer(self._checked(credentials), access)
        else:
            access = self._constrained(sender, credentials)
        return self._roles.resolve(access) if self._resolving else access

    async def averify_credentials(self, credentials: Credentials) -> AccessToken:
        """Verify a request's `Credentials`, as its adapter read them (async twin)."""
        if (sender := self._sender) is None:
            access = self._hit(credentials.token) if credentials.scheme == "Bearer" else None
            if not access or access._bound:
                access = await self._abearer(self._checked(credentials), access)
        else:
            access = await self._aconstrained(sender, credentials)
        return await self._roles.aresolve(access) if self._resolving else access

    def verify(self, token: str) -> AccessToken:
        """Verify a bare access token (sync twin); with DPoP, as one sent with the Bearer scheme."""
        if self._sender is not None:
            return self.verify_credentials(Credentials("Bearer", token))
        access = self._hit(token)
        if not access or access._bound:  # a bare token: no client certificate for a bound one
            access = self._bearer(Credentials("Bearer", token), access)
        return self._roles.resolve(access) if self._resolving else access

    async def averify(self, token: str) -> AccessToken:
        """Verify a bare access token (async twin)."""
        if self._sender is not None:
            return await self.averify_credentials(Credentials("Bearer", token))
        access = self._hit(token)
        if not access or access._bound:
            access = await self._abearer(Credentials("Bearer", token), access)
        return await self._roles.aresolve(access) if self._resolving else access

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
