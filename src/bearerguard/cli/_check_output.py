"""How `bearerguard check` prints a report: as text, or as one JSON document.

The token, its signature and any shared secret are never printed; claims whose names suggest a
credential are redacted, and URLs are shown without userinfo or query (RFC 3986 §3.2.1).
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from .._config import Issuer
from .._config_introspection import Introspection
from .._redact import redact_claims, safe_url
from ._report import Report, Step
from ._timefmt import duration, utc

_MARKS = {"ok": "✓", "failed": "✗", "skipped": "-"}
_ASCII_MARKS = {"ok": "ok", "failed": "FAIL", "skipped": "-"}


def _issuers(issuers: tuple[Issuer, ...]) -> list[dict[str, Any]]:
    return [
        {
            "issuer": safe_url(issuer.issuer),
            "audience": issuer.audience,
            "algorithms": issuer.algorithms,
            "jwks_uri": None if issuer.jwks_uri is None else safe_url(issuer.jwks_uri),
            "discovery_urls": [safe_url(url) for url in issuer.discovery_urls],
            "shared_secret": issuer.shared_secret is not None,  # whether, never what
            "leeway": issuer.leeway,
            "max_token_age": issuer.max_token_age,
            "rfc9068": issuer.rfc9068,
            "scope_claims": issuer.scope_claims,
        }
        for issuer in issuers
    ]


def _verdict(failure: Step | None) -> dict[str, Any]:
    if failure is None or failure.error is None:
        return {"valid": True, "step": None, "reason": None, "status": 200, "error": None}
    error = failure.error
    return {
        "valid": False,
        "step": failure.name,
        "reason": error.reason.name,
        "description": error.reason.value,
        "status": error.status_code,
        "error": getattr(error, "error", None),  # the RFC 6750 error code, if any
    }


def _introspection(config: Introspection | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return {
        "endpoint": None if config.endpoint is None else safe_url(config.endpoint),
        "issuer": None if config.issuer is None else safe_url(config.issuer),
        "client_id": config.client_id,
        "auth_method": config.auth_method,  # how, never the secret or the key
        "audience": config.audience,
        "introspect_jwts": config.introspect_jwts,
    }


def json_document(
    report: Report,
    issuers: tuple[Issuer, ...],
    introspection: Introspection | None,
    exchanges: list[dict[str, Any]],
    log: list[str],
) -> dict[str, Any]:
    return {
        "verdict": _verdict(report.failure),
        "exit_code": report.exit_code,
        "now": report.now,
        "now_utc": utc(report.now),
        "token_bytes": report.token_bytes,
        "source": report.source,
        "issuers": _issuers(issuers),
        "introspection": _introspection(introspection),
        "header": redact_claims(report.header),
        "claims": redact_claims(report.claims),
        "claims_verified": report.verified,
        "steps": [
            {
                "name": step.name,
                "status": step.status,
                "detail": step.detail,
                "reason": step.error.reason.name if step.error else None,
                "note": step.note,
            }
            for step in report.steps
        ],
        "http": exchanges,
        "log": log,
        "notes": report.notes,
    }


def _setup(issuers: tuple[Issuer, ...], introspection: Introspection | None, write: Any) -> None:
    """What the token is checked against: the issuers, and the introspection client."""
    for issuer in issuers:
        urls = [safe_url(url) for url in issuer.discovery_urls]
        discovery = f"discovery at {urls[0]}{' then RFC 8414' * (len(urls) > 1)}" if urls else ""
        jwks = safe_url(issuer.jwks_uri) if issuer.jwks_uri else ""
        keys = jwks or discovery or "the shared secret"
        write(f"issuer     {safe_url(issuer.issuer)}\n")
        write(f"           audience {' '.join(issuer.audience or ['(not checked)'])}\n")
        write(f"           algorithms {' '.join(issuer.algorithms)}, leeway ")
        write(f"{duration(issuer.claims_policy().leeway)}\n           keys from {keys}\n")
    if introspection is not None:
        shown = _introspection(introspection) or {}
        where = shown["endpoint"] or f"the endpoint in {shown['issuer']}'s metadata"
        write(f"introspect {where}\n           as client {shown['client_id']!r} ")
        write(f"({shown['auth_method']}; the secret or key is not shown)\n")


def print_text(  # noqa: PLR0917 - the report and each part of what it is printed with
    report: Report,
    issuers: tuple[Issuer, ...],
    introspection: Introspection | None,
    exchanges: list[dict[str, Any]],
    log: list[str],
    out: TextIO,
) -> None:
    try:
        "".join(_MARKS.values()).encode(out.encoding or "ascii")
        marks = _MARKS
    except (UnicodeEncodeError, LookupError):
        marks = _ASCII_MARKS
    write = out.write
    write(f"bearerguard check at {utc(report.now)}\n")
    _setup(issuers, introspection, write)
    write(f"token      {report.token_bytes} bytes (the token and its signature are not shown)\n")
    if report.header is not None:
        write(f"header     {json.dumps(redact_claims(report.header), ensure_ascii=False)}\n")
    if report.claims is not None:
        trust = "verified" if report.verified else "NOT TRUSTED: signature not verified"
        if report.source == "introspection":
            trust = "the introspection answer"
        claims = json.dumps(redact_claims(report.claims), indent=2, ensure_ascii=False)
        write(f"claims     ({trust})\n           {claims.replace(chr(10), chr(10) + ' ' * 11)}\n")
    write("\nchecks\n")
    failure, notes, width = report.failure, set(), max(map(len, marks.values()))
    for step in report.steps:
        if step.note is not None and step.note not in notes:
            notes.add(step.note)
            write(f"  ({step.note})\n")
        first = ""
        if step is failure and step.error is not None:
            code = getattr(step.error, "error", None) or f"HTTP {step.error.status_code}"
            first = f"   <-- first failure: {step.error.reason.name}, {code}"
        write(f"  {marks[step.status]:<{width}} {step.name:<10} {step.detail}{first}\n")
    if exchanges:
        write("\nhttp\n")
        for exchange in exchanges:
            status = exchange["status"] or "no answer"
            write(f"  {exchange['method']} {exchange['url']} -> {status}\n")
    if log:
        write("\nlog\n" + "".join(f"  {line}\n" for line in log))
    if report.notes:
        write("\n" + "".join(f"note       {note}\n" for note in report.notes))
    verdict = _verdict(failure)
    if verdict["valid"]:
        write("\nverdict    VALID: the resource server accepts this token (exit 0)\n")
        return
    outcome = "COULD NOT CHECK" if report.exit_code == 2 else "REFUSED"
    code = f', error="{verdict["error"]}"' if verdict["error"] else ""
    write(f"\nverdict    {outcome} at {verdict['step']}: {verdict['reason']}, ")
    write(f"{verdict['description']} (HTTP {verdict['status']}{code}; exit {report.exit_code})\n")
