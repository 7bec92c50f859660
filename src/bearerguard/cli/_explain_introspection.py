"""`bearerguard check` for a token the server introspects (RFC 7662) instead of verifying.

The server's own introspection flow runs (discovery if needed, the POST, `read_answer`), so the
verdict is the server's; the answer's members are then shown one check at a time, in the order
`read_answer` checks them. The request's credentials and the token never reach the report; the
answer is shown with credential-like members redacted, like a JWT's claims.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._claims import check_expiry, check_issued_at, check_not_before, time_claim
from .._errors import InvalidTokenError, UpstreamUnavailableError
from .._flow import Fetch, Fetched, Outcome, describe, recorded
from .._introspection import Introspector, token_key
from .._introspection_answer import (
    STRING_MEMBERS,
    check_audience,
    check_issuer,
    check_members,
)
from .._redact import safe_url
from .._scopes import read_scopes
from .._server import ResourceServer
from ._report import Report
from ._timefmt import duration, relative, utc

STEPS = ("endpoint", "answer", "active", "members", "iss", "aud", "exp", "nbf", "iat", "scopes")


def explain_introspection(
    server: ResourceServer, introspector: Introspector, token: str, report: Report, why: str
) -> frozenset[str] | None:
    """Introspect `token` as `server` does; returns the scopes the answer grants, if accepted."""
    report.source = "introspection"
    report.add("size", "ok", f"{len(token)} bytes (limit {server.max_token_bytes})")
    report.add("parse", "ok", why)
    config, now = introspector.config, report.now
    seen: list[tuple[Fetch, Outcome]] = []
    error: InvalidTokenError | UpstreamUnavailableError | None = None
    try:
        flow = recorded(introspector.flow(token, token_key(token), now), seen)
        server.key_source.http.run(flow)  # the server's own driver, clients and deadline
    except (InvalidTokenError, UpstreamUnavailableError) as exc:
        error = exc
    posts = [(fetch, outcome) for fetch, outcome in seen if fetch.method == "POST"]
    credentials = f"{config.auth_method} as client {config.client_id!r} (credentials not shown)"
    if not posts:  # discovery failed: the server answers 503
        report.add("endpoint", "failed", f"no introspection endpoint: {error}", error)
        _rest(report, "endpoint")
        return None
    fetch, outcome = posts[-1]
    report.add("endpoint", "ok", f"POST {safe_url(fetch.url)}, {credentials}")
    answer = outcome.document if isinstance(outcome, Fetched) else None
    if not (isinstance(outcome, Fetched) and outcome.status == 200 and answer is not None):
        refusal = error if error is not None else UpstreamUnavailableError("introspection")
        report.add("answer", "failed", describe(outcome), refusal)
        _rest(report, "answer")
        return None
    report.claims, report.verified = answer, True  # what the AS says: not the client's to forge
    report.add("answer", "ok", "HTTP 200, a JSON object")
    active = answer.get("active")
    if not isinstance(active, bool):
        report.add("active", "failed", f"not a JSON boolean: {active!r} (not RFC 7662)", error)
        _rest(report, "active")
        return None
    if not active:
        report.add("active", "failed", "false: revoked, expired or unknown to the AS", error)
        _rest(report, "active", "an inactive answer says nothing more (RFC 7662 §2.2)")
        return None
    report.add("active", "ok", "true")
    scopes = _members(answer, config, report, now)
    if error is not None and report.failure is None:  # a check not shown above refused it
        report.add("answer", "failed", error.reason.value, error)
    return scopes if error is None else None


def _members(
    answer: dict[str, Any], config: Any, report: Report, now: float
) -> frozenset[str] | None:
    """The checks of `_introspection_answer.read_answer` on an active answer, in its order."""

    def step(name: str, check: Callable[[], object], describe: Callable[[bool], str]) -> None:
        try:
            check()
        except InvalidTokenError as exc:
            report.add(name, "failed", describe(False), exc)
        else:
            report.add(name, "ok", describe(True))

    def members() -> None:
        check_members(answer)

    def issuer() -> None:
        check_issuer(answer, config)

    def audience() -> None:
        check_audience(answer, config)

    wrong = [n for n in STRING_MEMBERS if n in answer and not isinstance(answer[n], str)]
    step(
        "members",
        members,
        lambda ok: "client_id, sub, iss, … are strings" if ok else f"not strings: {wrong}",
    )
    if config.issuer is None:
        report.add("iss", "skipped", "not checked: no issuer configured for introspection")
    else:
        iss = repr(answer["iss"]) if "iss" in answer else "absent, so"
        step("iss", issuer, lambda ok: f"{iss} {'is' if ok else 'is not'} {config.issuer!r}")
    wanted = " ".join(config.audience) if config.audience else "(any: audience not configured)"
    aud = repr(answer.get("aud"))
    step(
        "aud",
        audience,
        lambda ok: (
            "absent (not required)"
            if "aud" not in answer
            else f"{aud} {'names' if ok else 'is not'} this resource: {wanted}"
        ),
    )
    leeway = f"leeway {duration(config.leeway)}"

    def when(name: str) -> str:
        return _when(answer, name, now, leeway)

    step("exp", lambda: check_expiry(answer, config.leeway, now), lambda ok: when("exp"))
    step("nbf", lambda: check_not_before(answer, config.leeway, now), lambda ok: when("nbf"))
    step("iat", lambda: check_issued_at(answer, config.leeway, now), lambda ok: when("iat"))
    try:
        scopes = read_scopes(answer, config.scope_claims)
    except InvalidTokenError as exc:
        report.add("scopes", "failed", "a scope member is neither a string nor an array", exc)
        return None
    shown = " ".join(sorted(scopes)) or f"none (looked in {', '.join(config.scope_claims)})"
    report.add("scopes", "ok", shown)
    return scopes


def _when(answer: dict[str, Any], name: str, now: float, leeway: str) -> str:
    try:
        at = time_claim(answer, name)
    except InvalidTokenError:
        return f"{name} is not a number of seconds since 1970"
    if at is None:
        return "absent"
    return f"{relative(at - now)}: {utc(at)} ({leeway})"


def _rest(report: Report, after: str, why: str = "not checked: an earlier check failed") -> None:
    """Every step after `after`, skipped: the report names every step."""
    for name in STEPS[STEPS.index(after) + 1 :]:
        report.add(name, "skipped", why)
