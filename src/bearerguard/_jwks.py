"""The JWKS cache of one issuer: a state machine that decides when to fetch and never fetches.

Invariants, each tested on a fake clock:
- keys younger than their TTL are served without any fetch; the TTL is the response's
  `Cache-Control: max-age` clamped to the policy's bounds, or the policy's default;
- an unknown `kid` or expired keys cause a fetch, but never more than one per
  `min_refetch_interval`, whatever the reason: a flood of random `kid`s costs one fetch;
- a failed fetch keeps the last good keys, which stay usable for `stale_if_error` seconds past
  their TTL; past that, or with no keys at all, the answer is `UpstreamUnavailableError` (503);
- an unknown `kid` is `invalid_token` only when the last fetch succeeded; after a failed fetch it
  may be a key we could not see yet, so it is a 503 too.
The caller serialises `key_flow` with `lock` (threads) or `alock()` (asyncio tasks).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from ._discovery import DiscoveryError, Metadata, discovery_flow
from ._errors import InvalidTokenError, Reason, UpstreamUnavailableError
from ._flow import Fetch, Fetched, Flow, describe
from ._keys import Key, KeySet
from ._redact import safe_url

logger = logging.getLogger("bearerguard.jwks")


@dataclass(frozen=True, slots=True, kw_only=True)
class JWKSPolicy:
    """How long keys are trusted, and how often the issuer may be asked. Durations in seconds."""

    default_ttl: float = 300.0  # when the JWKS response has no Cache-Control: max-age
    min_ttl: float = 60.0
    max_ttl: float = 86400.0
    min_refetch_interval: float = 10.0  # at most one fetch per interval, for any reason
    stale_if_error: float = 3600.0  # how long past their TTL keys serve while the issuer is down

    def __post_init__(self) -> None:
        if not 0 <= self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ValueError("JWKSPolicy needs 0 <= min_ttl <= default_ttl <= max_ttl")
        if self.min_refetch_interval < 0 or self.stale_if_error < 0:
            raise ValueError("JWKSPolicy durations must not be negative")

    def ttl(self, max_age: float | None) -> float:
        ttl = self.default_ttl if max_age is None else max_age
        return min(max(ttl, self.min_ttl), self.max_ttl)


@dataclass(frozen=True, slots=True)
class JWKSStatus:
    """A health-check view of one issuer's keys. Ages are in seconds, None if never."""

    issuer: str
    jwks_uri: str | None
    kids: tuple[str | None, ...]
    age: float | None
    ttl: float | None
    last_attempt_age: float | None
    last_error: str | None
    fresh: bool
    usable: bool

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class JWKSCache:
    """The keys of one issuer, from a configured `jwks_uri` or found by discovery."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_uri: str | None = None,
        discovery_urls: tuple[str, ...] = (),
        policy: JWKSPolicy | None = None,
        allow_http: bool = False,
    ) -> None:
        if jwks_uri is None and not discovery_urls:
            raise ValueError("JWKSCache needs a jwks_uri or discovery URLs")
        self.issuer = issuer
        self.policy = policy or JWKSPolicy()
        self.keys: KeySet | None = None
        self.metadata: Metadata | None = None
        self.last_error: str | None = None
        self.lock = threading.Lock()
        self._configured_uri = jwks_uri
        self._discovery_urls = discovery_urls
        self._allow_http = allow_http
        self._last_attempt = -math.inf
        self._alocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def jwks_uri(self) -> str | None:
        if self._configured_uri is not None:
            return self._configured_uri
        return self.metadata.jwks_uri if self.metadata else None

    def alock(self) -> asyncio.Lock:
        """The asyncio lock for the running loop (an asyncio.Lock belongs to one loop)."""
        loop = asyncio.get_running_loop()
        lock = self._alocks.get(loop)
        if lock is None:
            lock = self._alocks[loop] = asyncio.Lock()
        return lock

    # -- reading, without a lock ------------------------------------------------------------

    def fresh(self, kid: str | None, alg: str, now: float) -> Key | None:
        """The key for `kid` if the keys are within their TTL: the fast path, no fetch needed."""
        keys = self.keys
        if keys is None or now >= keys.expires_at:
            return None
        return keys.find(kid, alg)

    def stale(self, kid: str | None, alg: str, now: float) -> Key | None:
        """The key for `kid` if the keys are still usable past their TTL (stale-if-error)."""
        keys = self.keys
        if keys is None or now >= keys.expires_at + self.policy.stale_if_error:
            return None
        return keys.find(kid, alg)

    def is_current(self, kid: str | None, key: Key, now: float) -> bool:
        """Is `key` still published under `kid` in fresh keys? (verified-token cache hits)"""
        keys = self.keys
        return keys is not None and now < keys.expires_at and keys.by_kid.get(kid) is key

    def needs_fetch(self, kid: str | None, alg: str, now: float) -> bool:
        if now - self._last_attempt < self.policy.min_refetch_interval:
            return False  # never hammer the issuer, whatever the reason
        keys = self.keys
        return keys is None or now >= keys.expires_at or keys.find(kid, alg) is None

    # -- the flow, under the caller's lock ---------------------------------------------------

    def key_flow(self, kid: str | None, alg: str, now: float) -> Flow[Key]:
        """Fetch if needed (at most one JWKS fetch, after discovery if needed), then select."""
        if self.needs_fetch(kid, alg, now):  # checked again under the lock: queued callers skip
            yield from self.refresh_flow(now)
        return self.select(kid, alg, now)

    def refresh_flow(self, now: float) -> Flow[None]:
        """Fetch the keys now (discovering the JWKS URI first if needed); never raises."""
        self._last_attempt = now
        try:
            if self.jwks_uri is None:
                self.metadata = yield from discovery_flow(
                    self.issuer, self._discovery_urls, allow_http=self._allow_http
                )
            uri = self.jwks_uri
            if uri is None:
                raise DiscoveryError("metadata has no jwks_uri")
            outcome = yield Fetch(uri)
            shown = safe_url(uri)  # what messages and log lines may show of it
            if not (isinstance(outcome, Fetched) and outcome.ok):
                raise DiscoveryError(f"{shown}: {describe(outcome)}")
            keys = KeySet.from_document(
                outcome.document,
                fetched_at=now,
                ttl=self.policy.ttl(outcome.max_age),
                previous=self.keys,
                source=shown,
            )
            if not keys.keys:  # a broken publication must not wipe out the last good keys
                raise DiscoveryError(f"{shown}: the JWKS has no usable verification keys")
            self.keys = keys
        except (DiscoveryError, ValueError) as exc:
            self.last_error = str(exc)
            if self._configured_uri is None:
                self.metadata = None  # the JWKS URI may have moved: discover again next time
            logger.warning("fetching keys of issuer %s failed: %s", self.issuer, exc)
            return
        self.last_error = None
        logger.debug("fetched %d keys of issuer %s", len(self.keys.keys), self.issuer)

    def select(self, kid: str | None, alg: str, now: float) -> Key:
        keys = self.keys
        if keys is None or now >= keys.expires_at + self.policy.stale_if_error:
            raise self._unavailable(now)
        key = keys.find(kid, alg)
        if key is None:
            if self.last_error is not None:
                raise self._unavailable(now)  # maybe a new key we could not fetch: not the client
            raise InvalidTokenError(Reason.UNKNOWN_KID)
        return key

    def _unavailable(self, now: float) -> UpstreamUnavailableError:
        # The elapsed time first: `last + interval - now` rounds (502.16 + 10 - 502.16 is
        # 10.000000000000057), and the ceiling below would make a 10 s cool-down an 11.
        wait = self.policy.min_refetch_interval - (now - self._last_attempt)
        return UpstreamUnavailableError(
            f"keys of issuer {self.issuer}", retry_after=max(1.0, math.ceil(wait))
        )

    def status(self, now: float) -> JWKSStatus:
        keys = self.keys
        return JWKSStatus(
            issuer=self.issuer,
            jwks_uri=self.jwks_uri,
            kids=tuple(key.kid for key in keys.keys) if keys else (),
            age=now - keys.fetched_at if keys else None,
            ttl=keys.ttl if keys else None,
            last_attempt_age=None if self._last_attempt == -math.inf else now - self._last_attempt,
            last_error=self.last_error,
            fresh=keys is not None and now < keys.expires_at,
            usable=keys is not None and now < keys.expires_at + self.policy.stale_if_error,
        )
