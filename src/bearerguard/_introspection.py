"""RFC 7662 token introspection, sans I/O: the request and the flow (the answer: elsewhere).

`_introspection_answer` reads the answer. Which failures are whose (each decision tested):
- No answer, a status other than 200, or a body that is not a JSON object: the AS is down or
  broken, so 503 (`UpstreamUnavailableError`), never 401 and never a cached answer past its
  deadline. A 401/403 means *our* client credentials are wrong: 503 too, logged at ERROR.
  Exception: 400 `unsupported_token_type` (node-oidc-provider, for JWTs) is the AS declining to
  know this token, which RFC 7662 §2.2 says to report as inactive: 401. But for a JWT we verified
  ourselves (`introspect_jwts`) it means that option cannot work with this AS: 503 and an ERROR.
- `active` must be a JSON boolean (RFC 7662 §2.2, REQUIRED). Missing or `"true"` means the AS
  does not speak RFC 7662 and its answer cannot be trusted either way: 503 and an ERROR log, not
  a 401 that would blame the client for the operator's problem, and not cached.
- `active: false` is 401 `invalid_token`. An active answer with a member of the wrong type
  (`exp: "1700000000"`, `scope: 5`) is 401 too, as the same claim in a JWT is: it describes this
  token, it is the same on every retry, and failing closed beats guessing (token-shapes §6).
Answers that refuse the token are cached for `negative_ttl`; positive ones until `exp`, at most
`cache_max_ttl`. The cache key is the token's SHA-256, so no raw token is kept as a key. The cache
is the server's store (`_answers`, which reads and writes it around `Introspector.flow`: the flow
itself only decides); without one, answers and refusals are kept apart, each `cache_size` at
most: refusals (a flood of random tokens makes nothing else) never take the place of an accepted
token. Calls to the AS are bounded (`CallLimit`): the server holds a slot around each one, and
above the bound an unseen token gets a 503.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import cast

from ._answers import Answers, Found
from ._assertion import (
    ASSERTION_TYPE,
    PrivateKey,
    assertion_audience,
    basic_authorization,
    client_assertion,
    new_jti,
)
from ._config_introspection import Introspection
from ._discovery import DiscoveryError, Metadata, discovery_flow
from ._errors import (
    ConfigurationError,
    InvalidTokenError,
    UpstreamUnavailableError,
)
from ._flow import Fetch, Flow
from ._introspection_answer import failed_fields, read_answer
from ._limit import CallLimit
from ._redact import safe_url
from ._singleflight import SingleFlight
from ._store import Store
from ._token import AccessToken
from ._types import Clock
from ._urls import check_url, metadata_urls

logger = logging.getLogger("bearerguard.introspection")


def token_key(token: str) -> bytes:
    """The cache key of a token: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).digest()


def introspection_request(
    config: Introspection,
    endpoint: str,
    token: str,
    now: float,
    *,
    jti: Callable[[], str] = new_jti,
) -> Fetch:
    """The POST of RFC 7662 §2.1, authenticated as RFC 6749 §2.3.1 or RFC 7523 §2.2 says.

    A `private_key_jwt` assertion is made for this request alone: its `jti` must never repeat.
    """
    form = [("token", token), ("token_type_hint", "access_token")]
    headers: tuple[tuple[str, str], ...] = ()
    secret = config.client_secret or ""  # set for the client_secret_* methods (checked at init)
    if config.auth_method == "client_secret_basic":
        headers = (("authorization", basic_authorization(config.client_id, secret)),)
    elif config.auth_method == "client_secret_post":
        form += [("client_id", config.client_id), ("client_secret", secret)]
    else:
        assertion = client_assertion(
            client_id=config.client_id,
            audience=assertion_audience(
                config.private_key_audience, issuer=config.issuer, endpoint=endpoint
            ),
            key=cast(PrivateKey, config.private_key),  # loaded and checked at init
            alg=config.private_key_alg,
            kid=config.private_key_kid,
            now=now,
            jti=jti(),
        )
        form += [
            ("client_id", config.client_id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ]
    return Fetch(endpoint, method="POST", headers=headers, form=tuple(form))


class Introspector:
    """The introspection client of one resource server: endpoint, cache and flights.

    It decides and never fetches, nor caches: `flow()` yields the requests (discovery, then the
    POST) and `_answers` carries them out on the server's drivers under `flights`, one per token
    at a time, each holding a slot of `limit` (shared by the introspectors of one AS), around
    reads and writes of `answers` (the cache, in the server's store or in memory).
    """

    def __init__(
        self,
        config: Introspection,
        *,
        metadata: Callable[[], Metadata | None] | None = None,
        confirms_jwts: bool = False,
        limit: CallLimit | None = None,
        timer: Clock = time.monotonic,
        store: Store | None = None,
    ) -> None:
        self.config = config
        # True for `introspect_jwts`: the JWTs asked about were verified here already, so an AS
        # that will not introspect JWTs is a configuration problem (503), not a dead token.
        self.confirms_jwts = confirms_jwts
        self.flights: SingleFlight[bytes, Found] = SingleFlight()
        self.limit = limit or CallLimit(
            f"introspection at {safe_url(config.endpoint) if config.endpoint else config.issuer}",
            concurrent=config.max_concurrent_calls,
            per_second=config.max_calls_per_second,
            timer=timer,
        )
        # A refusal is cached with what the answer named, so a cached one is logged as well.
        self.answers = Answers(config, confirms_jwts=confirms_jwts, store=store, timer=timer)
        self._cache, self._refusals = self.answers.answers, self.answers.refusals
        self._endpoint = config.endpoint
        self._known_metadata = metadata  # an issuer's metadata already discovered for its keys

    def cached(self, key: bytes, now: float) -> AccessToken | None:
        """The cached answer for a token key: the token, None, or the cached refusal raised."""
        found = self.answers.get(key, now)
        if found is None:
            return None
        if isinstance(found[0], InvalidTokenError):
            raise found[0]
        return found[0]

    def flow(self, token: str, key: bytes, now: float) -> Flow[AccessToken]:
        """Introspect (after discovering the endpoint if needed): the token the AS describes.

        Raises `InvalidTokenError` for an answer that refuses it, `UpstreamUnavailableError`
        for one that cannot be trusted. `key` (the token's) is not read here: the caller caches.
        """
        endpoint = yield from self._endpoint_flow()
        outcome = yield introspection_request(self.config, endpoint, token, now)
        try:
            access, _ = read_answer(
                outcome, self.config, endpoint, now, confirms_jwts=self.confirms_jwts
            )
        except UpstreamUnavailableError:
            self._endpoint = self.config.endpoint  # a discovered endpoint may have moved
            raise
        logger.debug("introspected a token of client %r", access.client_id)
        return access

    def _endpoint_flow(self) -> Flow[str]:
        if self._endpoint is not None:
            return self._endpoint
        issuer = self.config.issuer or ""  # Introspection requires an endpoint or an issuer
        metadata = self._known_metadata() if self._known_metadata else None
        try:
            if metadata is None:
                metadata = yield from discovery_flow(
                    issuer, metadata_urls(issuer), allow_http=self.config.allow_http
                )
            endpoint = metadata.introspection_endpoint
            if endpoint is None:
                raise DiscoveryError("metadata has no introspection_endpoint")
            # Our client secret goes there: the same transport rule as configured URLs.
            check_url(endpoint, allow_http=self.config.allow_http, owner=issuer)
        except (DiscoveryError, ConfigurationError) as exc:
            logger.error(
                "introspection endpoint of issuer %s: %s",
                issuer,
                exc,
                extra=failed_fields(self.config, None, str(exc)),
            )
            url = metadata_urls(issuer)[0] if issuer else None
            raise UpstreamUnavailableError(f"metadata of issuer {issuer}", url=url) from exc
        self._endpoint = endpoint
        return endpoint
