"""RFC 7662 token introspection, sans I/O: the request, the reading of the answer, the cache.

Which failures are whose (the decisions that matter, each tested):
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
`cache_max_ttl`. The cache key is the token's SHA-256, so no raw token is kept as a key. The two
are kept apart, each `cache_size` at most: refusals (a flood of random tokens makes nothing
else) never take the place of an accepted token. Calls to the AS are bounded (`CallLimit`): the
server holds a slot around each one, and above the bound an unseen token gets a 503.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any, cast

from ._assertion import (
    ASSERTION_TYPE,
    PrivateKey,
    assertion_audience,
    basic_authorization,
    client_assertion,
    new_jti,
)
from ._cache import ExpiringCache
from ._claims import audiences, check_times
from ._config_introspection import Introspection
from ._discovery import DiscoveryError, Metadata, discovery_flow
from ._errors import (
    ConfigurationError,
    InvalidTokenError,
    Reason,
    Seen,
    UpstreamUnavailableError,
)
from ._flow import Fetch, Fetched, Flow, Outcome, describe
from ._limit import CallLimit
from ._logfields import seen_in_answer, upstream_fields
from ._redact import safe_url
from ._scopes import read_scopes
from ._singleflight import SingleFlight
from ._token import AccessToken, client_id_of, freeze, issued
from ._types import Clock
from ._urls import check_url, metadata_urls

logger = logging.getLogger("bearerguard.introspection")

# RFC 7662 §2.2: optional members whose type is a string when present.
_STRING_MEMBERS = ("client_id", "username", "token_type", "sub", "iss", "jti")


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


def read_answer(
    outcome: Outcome,
    config: Introspection,
    endpoint: str,
    now: float,
    *,
    confirms_jwts: bool = False,
) -> tuple[AccessToken, float]:
    """The access token an answer describes and the time it may be cached until (its `exp`).

    Raises `InvalidTokenError` if the token is not acceptable, `UpstreamUnavailableError` if the
    answer cannot be trusted (see the module docstring).
    """
    answer = _document(outcome, config, endpoint, confirms_jwts)
    active = answer.get("active")
    if not isinstance(active, bool):
        where = f"introspection at {safe_url(endpoint)}"
        logger.error(
            "%s: the answer has no boolean 'active' member",
            where,
            extra=_failed(config, endpoint, "no boolean active member"),
        )
        raise UpstreamUnavailableError(where, url=endpoint)
    if not active:
        raise InvalidTokenError(Reason.INACTIVE)
    try:
        return _active(answer, config, endpoint, now)
    except InvalidTokenError as exc:
        exc.seen = seen_in_answer(answer)  # the log names the client and issuer the AS named
        raise


# The checks of an active answer, in order; `bearerguard check` runs the same functions.


def check_members(answer: dict[str, Any]) -> None:
    """The members RFC 7662 §2.2 defines as strings are strings when present."""
    for name in _STRING_MEMBERS:
        if name in answer and not isinstance(answer[name], str):
            raise InvalidTokenError(Reason.CLAIM_TYPE)


def check_issuer(answer: dict[str, Any], config: Introspection) -> None:
    """An `iss` the answer names is the configured issuer (an absent one is not checked)."""
    if config.issuer is not None and answer.get("iss", config.issuer) != config.issuer:
        raise InvalidTokenError(Reason.UNKNOWN_ISSUER)


def check_audience(answer: dict[str, Any], config: Introspection) -> None:
    """An `aud` the answer names is well formed and, when audiences are configured, one of them."""
    if "aud" in answer:
        token_audiences = audiences(answer)  # type-checked even when no audience is configured
        if config.audience is not None and set(config.audience).isdisjoint(token_audiences):
            raise InvalidTokenError(Reason.AUDIENCE)


def _active(
    answer: dict[str, Any], config: Introspection, endpoint: str, now: float
) -> tuple[AccessToken, float]:
    check_members(answer)
    check_issuer(answer, config)
    check_audience(answer, config)
    exp, _ = check_times(answer, config.leeway, now)  # type: ignore[arg-type]  # float after init
    access = issued(
        issuer=answer.get("iss") or config.issuer or endpoint,
        subject=answer.get("sub"),
        client_id=client_id_of(answer, config.client_id_claims),
        scopes=read_scopes(answer, config.scope_claims),
        claims=freeze(answer),
        expires_at=exp,
        source="introspection",
    )
    return access, math.inf if exp is None else exp


def _document(
    outcome: Outcome, config: Introspection, endpoint: str, confirms_jwts: bool
) -> dict[str, Any]:
    if isinstance(outcome, Fetched) and outcome.status == 200 and outcome.document is not None:
        return outcome.document
    where = f"introspection at {safe_url(endpoint)}"  # what logs and errors may show of it
    if isinstance(outcome, Fetched):
        error = (outcome.document or {}).get("error")
        if outcome.status == 400 and error == "unsupported_token_type":
            if confirms_jwts:
                logger.error(
                    "%s does not introspect JWTs (unsupported_token_type): "
                    "introspect_jwts cannot work with this authorization server",
                    where,
                    extra=_failed(config, endpoint, "unsupported_token_type", status=400),
                )
                raise UpstreamUnavailableError(where, url=endpoint)
            raise InvalidTokenError(Reason.INACTIVE)
        if outcome.status in (401, 403):
            logger.error(
                "%s refused our client credentials (HTTP %d, %r): check "
                "client_id %r and its %s credentials",
                where,
                outcome.status,
                error,
                config.client_id,
                config.auth_method,
                extra=_failed(config, endpoint, "credentials refused", status=outcome.status),
            )
            raise UpstreamUnavailableError(where, url=endpoint)
    status = outcome.status if isinstance(outcome, Fetched) else None
    logger.warning(
        "%s failed: %s",
        where,
        describe(outcome),
        extra=_failed(config, endpoint, describe(outcome), status=status),
    )
    raise UpstreamUnavailableError(where, url=endpoint)


def _failed(
    config: Introspection, endpoint: str | None, error: str, *, status: int | None = None
) -> dict[str, Any]:
    """`extra=` of an introspection failure: our client id (never a secret) and the URL."""
    return upstream_fields(
        "introspection_failed",
        issuer=config.issuer,
        upstream=endpoint,
        client_id=config.client_id,
        auth_method=config.auth_method,
        error=error,
        upstream_status=status,
    )


class Introspector:
    """The introspection client of one resource server: endpoint, cache and flights.

    It decides and never fetches: `flow()` yields the requests (discovery, then the POST) and the
    server's drivers carry them out under `flights`, one per token at a time, each holding a slot
    of `limit` (shared by the introspectors of one AS).
    """

    def __init__(
        self,
        config: Introspection,
        *,
        metadata: Callable[[], Metadata | None] | None = None,
        confirms_jwts: bool = False,
        limit: CallLimit | None = None,
        timer: Clock = time.monotonic,
    ) -> None:
        self.config = config
        # True for `introspect_jwts`: the JWTs asked about were verified here already, so an AS
        # that will not introspect JWTs is a configuration problem (503), not a dead token.
        self.confirms_jwts = confirms_jwts
        self.flights: SingleFlight[bytes, AccessToken] = SingleFlight()
        self.limit = limit or CallLimit(
            f"introspection at {safe_url(config.endpoint) if config.endpoint else config.issuer}",
            concurrent=config.max_concurrent_calls,
            per_second=config.max_calls_per_second,
            timer=timer,
        )
        self._cache: ExpiringCache[bytes, AccessToken] = ExpiringCache(config.cache_size)
        # A refusal is cached with what the answer named, so a cached one is logged as well.
        self._refusals: ExpiringCache[bytes, tuple[Reason, Seen | None]] = ExpiringCache(
            config.cache_size
        )
        self._endpoint = config.endpoint
        self._known_metadata = metadata  # an issuer's metadata already discovered for its keys

    def cached(self, key: bytes, now: float) -> AccessToken | None:
        """The cached answer for a token key: the token, None, or the cached refusal raised."""
        if (hit := self._cache.get(key, now)) is not None:
            return hit
        if (refusal := self._refusals.get(key, now)) is not None:
            refused = InvalidTokenError(refusal[0])
            refused.seen = refusal[1]
            raise refused
        return None

    def flow(self, token: str, key: bytes, now: float) -> Flow[AccessToken]:
        """Answer from the cache, or introspect (after discovering the endpoint if needed)."""
        if (hit := self.cached(key, now)) is not None:  # again: a flight may just have landed
            return hit
        endpoint = yield from self._endpoint_flow()
        outcome = yield introspection_request(self.config, endpoint, token, now)
        config = self.config
        try:
            access, exp = read_answer(
                outcome, config, endpoint, now, confirms_jwts=self.confirms_jwts
            )
        except InvalidTokenError as exc:
            refusal = (exc.reason, exc.seen)
            self._refusals.put(key, refusal, deadline=now + config.negative_ttl, now=now)  # type: ignore[operator]
            raise
        except UpstreamUnavailableError:
            self._endpoint = config.endpoint  # a discovered endpoint may have moved
            raise
        deadline = min(exp, now + config.cache_max_ttl)  # type: ignore[operator]
        self._cache.put(key, access, deadline=deadline, now=now)
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
                extra=_failed(self.config, None, str(exc)),
            )
            url = metadata_urls(issuer)[0] if issuer else None
            raise UpstreamUnavailableError(f"metadata of issuer {issuer}", url=url) from exc
        self._endpoint = endpoint
        return endpoint
