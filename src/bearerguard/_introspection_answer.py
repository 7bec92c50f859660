"""Reading an RFC 7662 introspection answer: what it means, and whose fault a bad one is.

The decisions (each tested; the `_introspection` module docstring lists them): no answer, a
status other than 200 or a body that is not a JSON object is the AS's fault (503); 401/403 is
ours (our client credentials: 503, logged at ERROR); 400 `unsupported_token_type` is an inactive
token (401), except for a JWT verified here (`introspect_jwts`: 503); `active` must be a JSON
boolean (else 503); `active: false` is 401; an active answer with a member of the wrong type is
401, as the same claim in a JWT is.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ._claims import audiences, check_times
from ._config_introspection import Introspection
from ._errors import InvalidTokenError, Reason, UpstreamUnavailableError
from ._flow import Fetched, Outcome, describe
from ._logfields import seen_in_answer, upstream_fields
from ._redact import safe_url
from ._scopes import read_scopes
from ._token import AccessToken, client_id_of, freeze, issued

logger = logging.getLogger("bearerguard.introspection")

# RFC 7662 §2.2: optional members whose type is a string when present.
STRING_MEMBERS = ("client_id", "username", "token_type", "sub", "iss", "jti")


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
            extra=failed_fields(config, endpoint, "no boolean active member"),
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
    for name in STRING_MEMBERS:
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
                    extra=failed_fields(config, endpoint, "unsupported_token_type", status=400),
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
                extra=failed_fields(config, endpoint, "credentials refused", status=outcome.status),
            )
            raise UpstreamUnavailableError(where, url=endpoint)
    status = outcome.status if isinstance(outcome, Fetched) else None
    logger.warning(
        "%s failed: %s",
        where,
        describe(outcome),
        extra=failed_fields(config, endpoint, describe(outcome), status=status),
    )
    raise UpstreamUnavailableError(where, url=endpoint)


def failed_fields(
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
