"""What bearerguard's log lines say, and the structured fields they carry (`extra=`).

Every refusal is one line on the `bearerguard` logger: the `Reason`, what the server had read of
the token when it refused (`Seen`), and for an unknown issuer the configured one it may have been
meant for. Values read from a token before its signature was checked are attacker-controlled:
they are marked as unverified, cut to `LIMIT` characters and shown with `repr` (quotes escaped,
control and line-breaking characters as escapes), so a token cannot forge a line or a field.
The token itself is never logged.

Every line also carries one dictionary under `record.bearerguard` (a name no `LogRecord`
attribute has), for JSON formatters; its keys are listed in the README's logging section.
Nothing here runs for an accepted token but a DEBUG line: refusals, key loads and upstream
failures log. `log_event` is the subscriber of a server's `Events` that writes these lines.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ._b64json import Malformed
from ._errors import (
    BearerError,
    MissingTokenError,
    Seen,
    UpstreamUnavailableError,
    UseDPoPNonceError,
)
from ._events import Event, KeysFetched, TokenAccepted, TokenRefused
from ._redact import LIMIT, clip, safe_url, shown

logger = logging.getLogger("bearerguard")
keys_logger = logging.getLogger("bearerguard.jwks")

EXTRA = "bearerguard"  # the one LogRecord attribute bearerguard adds
_MAX_KIDS = 10  # kids named in a key-load line; the count is always given
# How far to trust what a refusal line names, by `Seen.source` (signed values need no note).
_NOTES = {"unverified jwt": "unverified", "introspection": "from the introspection answer"}


def seen_in_answer(answer: Mapping[str, Any]) -> Seen:
    """What an introspection answer names (RFC 7662 §2.2 `iss`, `client_id`)."""
    return Seen("introspection", answer.get("iss"), None, None, answer.get("client_id"))


def fields(event: str, **values: Any) -> dict[str, Any]:
    """The `extra=` of a log call: one namespaced dictionary, never colliding with LogRecord."""
    return {EXTRA: {"event": event, **values}}


def log_refusal(
    exc: BearerError | UpstreamUnavailableError,
    seen: Seen | None = None,
    *,
    required: Iterable[str] = (),
    detail: str | None = None,
) -> None:
    """Log one refusal: INFO for a request without credentials and for a DPoP proof without the
    server's fresh nonce (a step of the protocol, RFC 9449 §9), WARNING otherwise.

    `detail` is a fixed, secret-free text saying more than the reason (what a route wanted).
    """
    seen = exc.seen or seen
    expected = isinstance(exc, MissingTokenError | UseDPoPNonceError)
    level = logging.INFO if expected else logging.WARNING
    parts = [f"refused: {exc.reason.name}"]
    if seen is not None:
        parts.append(f"iss={shown(seen.issuer)}")
        if seen.source.endswith("jwt"):
            parts.append(f"kid={shown(seen.kid)} alg={shown(seen.alg)}")
        parts.append(f"client_id={shown(seen.client_id)}")
    if upstream := getattr(exc, "url", None):
        parts.append(f"upstream={upstream}")
    required = " ".join(required)
    if required:
        parts.append(f"required={required!r}")
    cause = exc.__cause__
    if isinstance(cause, Malformed):
        detail = str(cause)  # the parser's fixed text: what is wrong with the token's form
    notes = [detail, _NOTES.get(seen.source) if seen else None]
    if seen is not None and seen.hint is not None:
        notes.append(f"did you mean {safe_url(seen.hint)!r}?")
    if any(notes):
        parts.append(f"({'; '.join(note for note in notes if note)})")
    logger.log(
        level,
        "%s",
        " ".join(parts),
        extra=fields(
            "refused",
            reason=exc.reason.name,
            status=exc.status_code,
            error=getattr(exc, "error", None),
            source=seen.source if seen else None,
            verified=seen is not None and seen.source != "unverified jwt",
            issuer=clip(seen.issuer) if seen else None,
            kid=clip(seen.kid) if seen else None,
            alg=clip(seen.alg) if seen else None,
            client_id=clip(seen.client_id) if seen else None,
            required=required.split() if required else None,
            did_you_mean=safe_url(seen.hint) if seen and seen.hint else None,
            upstream=upstream,
            detail=detail,
            retry_after=getattr(exc, "retry_after", None),
        ),
    )


def log_event(event: Event) -> None:
    """The logging subscriber of `Events`: one line per refusal, key fetch and accepted token
    (DEBUG); introspection and role lookups log their failures where they read the answer."""
    if type(event) is TokenRefused:
        log_refusal(event.error, event.seen, required=event.required, detail=event.detail)
    elif type(event) is KeysFetched:
        if event.error is None:
            log_keys_loaded(keys_logger, event.issuer, event.url, event.kids, event.previous)
        else:
            keys_logger.warning(
                "fetching keys of issuer %s failed: %s",
                event.issuer,
                event.error,
                extra=upstream_fields(
                    "keys_failed", issuer=event.issuer, upstream=event.url, error=event.error
                ),
            )
    elif type(event) is TokenAccepted and logger.isEnabledFor(logging.DEBUG):
        logger.debug("accepted token of client %r from %s", event.client_id, event.issuer)


def log_keys_loaded(
    log: logging.Logger,
    issuer: str,
    source: str | None,
    kids: Iterable[str | None],
    previous: Iterable[str | None] | None,
) -> None:
    """One INFO line per JWKS load, naming the kids and what changed since the last load."""
    kids = sorted(kids, key=str)
    named = ", ".join(shown(kid) for kid in kids[:_MAX_KIDS])
    more = f" and {len(kids) - _MAX_KIDS} more" if len(kids) > _MAX_KIDS else ""
    change = ""
    added = removed = None
    if previous is not None:
        before = set(previous)
        added = sorted((kid for kid in kids if kid not in before), key=str)
        removed = sorted((kid for kid in before if kid not in set(kids)), key=str)
        change = "; unchanged" if not (added or removed) else ""
        if added:
            change += f"; new {', '.join(shown(kid) for kid in added[:_MAX_KIDS])}"
        if removed:
            change += f"; gone {', '.join(shown(kid) for kid in removed[:_MAX_KIDS])}"
    log.info(
        "loaded %d key%s of issuer %s from %s: kids %s%s%s",
        len(kids),
        "" if len(kids) == 1 else "s",
        safe_url(issuer),
        source,
        named or "(none)",
        more,
        change,
        extra=fields(
            "keys_loaded",
            issuer=safe_url(issuer),
            upstream=source,
            kids=[clip(kid) for kid in kids[:100]],
            added=None if added is None else [clip(kid) for kid in added[:100]],
            removed=None if removed is None else [clip(kid) for kid in removed[:100]],
        ),
    )


def upstream_fields(
    event: str, *, issuer: str | None, upstream: str | None, **more: Any
) -> dict[str, Any]:
    """`extra=` of an upstream failure: which issuer, which URL (redacted), what went wrong."""
    return fields(
        event,
        issuer=None if issuer is None else safe_url(issuer),
        upstream=None if upstream is None else safe_url(upstream),
        **more,
    )


# -- "did you mean": the configured issuer an unknown `iss` was probably meant to be ------------

# Entra ID names one tenant by two issuers: v1 `https://sts.windows.net/{tenant}/` and v2
# `https://login.microsoftonline.com/{tenant}/v2.0`; tokens of the other form are a common mix-up.
_ENTRA_V1 = re.compile(r"sts\.windows\.net/([^/]+)/?")
_ENTRA_V2 = re.compile(r"login\.microsoftonline\.com/([^/]+)(?:/v2\.0)?/?")


def near_form(issuer: str) -> str:
    """The form two issuers share when they differ only by scheme, case, a trailing slash, or
    Entra v1/v2: what an operator means, never what is compared for trust."""
    parts = urlsplit(issuer.strip().lower())
    rest = (parts.netloc + parts.path).rstrip("/")
    for entra in (_ENTRA_V1, _ENTRA_V2):
        if match := entra.fullmatch(rest):
            return f"entra:{match[1]}"
    return rest or issuer.lower()


def near_issuers(issuers: Iterable[str]) -> dict[str, str]:
    """Configured issuers by their `near_form` (computed once, at construction)."""
    near: dict[str, str] = {}
    for issuer in issuers:
        near.setdefault(near_form(issuer), issuer)
    return near


def did_you_mean(iss: object, near: Mapping[str, str]) -> str | None:
    """The configured issuer `iss` nearly is, if any (only for a refusal: never on success)."""
    if not isinstance(iss, str) or len(iss) > 4 * LIMIT:
        return None
    try:
        form = near_form(iss)
    except ValueError:  # urlsplit: "http://[x", an NFKC delimiter in the host; no URL, no hint
        return None
    found = near.get(form)
    return None if found == iss else found
