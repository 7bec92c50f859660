"""The JWKS cache of one issuer: a state machine that decides when to fetch and never fetches.

Invariants, each tested on a fake clock:
- keys younger than their TTL are served without any fetch; the TTL is the response's
  `Cache-Control: max-age` clamped to the policy's bounds, or the policy's default;
- an unknown `kid`, expired keys, or a signature that the key published under its `kid` does not
  verify (the issuer may have replaced that key) cause a fetch, but never more than one per
  `min_refetch_interval`, whatever the reason: a flood of random `kid`s or of forged signatures
  costs one fetch. The interval counts from the end of the last attempt, so an issuer that hangs
  is asked once per interval, not back to back;
- a failed fetch keeps the last good keys, which stay usable for `stale_if_error` seconds past
  their TTL; past that, or with no keys at all, the answer is `UpstreamUnavailableError` (503);
- an unknown `kid` is `invalid_token` only when the last fetch succeeded; after a failed fetch it
  may be a key we could not see yet, so it is a 503 too.
The caller runs `refresh_flow` as a single flight per cache: callers that need keys while a fetch
is in flight wait for that fetch and share its outcome, then each calls `select` (`key_flow` is
the same three steps, `needs_fetch`, `refresh_flow` and `select`, for one caller alone).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ._config import JWKSPolicy
from ._discovery import DiscoveryError, Metadata, discovery_flow
from ._errors import InvalidTokenError, Reason, UpstreamUnavailableError
from ._events import Events, KeysFetched
from ._flow import Fetch, Fetched, Flow, describe
from ._keys import Key, KeySet
from ._redact import safe_url
from ._types import Clock


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
        events: Events | None = None,
    ) -> None:
        if jwks_uri is None and not discovery_urls:
            raise ValueError("JWKSCache needs a jwks_uri or discovery URLs")
        self.issuer = issuer
        self.policy = policy or JWKSPolicy()
        self.keys: KeySet | None = None
        self.metadata: Metadata | None = None
        self.last_error: str | None = None
        self._configured_uri = jwks_uri
        self._discovery_urls = discovery_urls
        self._allow_http = allow_http
        self._last_attempt = -math.inf  # when the last fetch ended, on the monotonic timer
        self._events = events  # told of every fetch: keys loaded, or why not

    @property
    def jwks_uri(self) -> str | None:
        if self._configured_uri is not None:
            return self._configured_uri
        return self.metadata.jwks_uri if self.metadata else None

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

    def may_fetch(self, now: float) -> bool:
        """Is the cool-down since the last fetch over? (Never hammer the issuer, for any reason.)"""
        return now - self._last_attempt >= self.policy.min_refetch_interval

    def needs_fetch(self, kid: str | None, alg: str, now: float) -> bool:
        if not self.may_fetch(now):
            return False
        keys = self.keys
        return keys is None or now >= keys.expires_at or keys.find(kid, alg) is None

    # -- the flow, one in flight at a time (the caller's single flight) -----------------------

    def key_flow(self, kid: str | None, alg: str, now: float) -> Flow[Key]:
        """Fetch if needed (at most one JWKS fetch, after discovery if needed), then select."""
        if self.needs_fetch(kid, alg, now):
            yield from self.refresh_flow(lambda: now)
        return self.select(kid, alg, now)

    def refresh_flow(self, timer: Clock) -> Flow[None]:
        """Fetch the keys now (discovering the JWKS URI first if needed); never raises.

        `timer` is read when the fetch starts (the keys' age counts from then) and when it ends
        (the cool-down counts from then, whatever the outcome).
        """
        now, started = timer(), time.time()
        previous = self.keys
        try:
            yield from self._fetch_flow(now)
        finally:
            self._last_attempt = timer()
        events = self._events
        if events is not None and events.keys:
            loaded = self.keys if self.keys is not previous else None
            events.emit(
                KeysFetched(
                    self.issuer,
                    safe_url(url) if (url := self._upstream()) else None,
                    None if loaded is not None else self.last_error,
                    tuple(loaded.kids) if loaded is not None else (),
                    tuple(previous.kids) if previous is not None else None,
                    started,
                    self._last_attempt - now,
                )
            )

    def _fetch_flow(self, now: float) -> Flow[None]:
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
            return
        self.last_error = None

    def reselect(self, kid: str | None, alg: str, key: Key, now: float) -> Key | None:
        """After `key` failed to verify a signature (and a refetch, if the cool-down allowed
        one): the key now published under `kid` if the issuer replaced it, else None.

        As for an unknown `kid`, the refusal stands only if the last fetch succeeded: after a
        failed one, the key may have been replaced where we could not see it (503).
        """
        current = self.select(kid, alg, now)  # the kid withdrawn: UNKNOWN_KID, or 503
        if current is not key:
            return current
        if self.last_error is not None:
            raise self._unavailable(now)
        return None

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
            f"keys of issuer {self.issuer}",
            retry_after=max(1.0, math.ceil(wait)),
            url=self._upstream(),
        )

    def _upstream(self) -> str | None:
        """The URL keys come from, or the first discovery URL while it is not known."""
        return self.jwks_uri or (self._discovery_urls[0] if self._discovery_urls else None)

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
