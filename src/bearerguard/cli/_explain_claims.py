"""`bearerguard check`'s claim steps: the checks of `check_claims`, one at a time, in its order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._claims import (
    audiences,
    check_audience,
    check_expiry,
    check_issued_at,
    check_issuer,
    check_max_age,
    check_not_before,
    check_required,
    check_values,
    time_claim,
)
from .._errors import InvalidTokenError, Reason
from .._scopes import read_scopes
from .._server import ResourceServer
from .._trusted import Trusted
from ._report import CLAIM_STEPS, Report
from ._timefmt import duration, relative, utc


def explain_claims(
    server: ResourceServer, trusted: Trusted | None, claims: Mapping[str, Any], report: Report
) -> frozenset[str] | None:
    # After an unknown issuer there is no policy; with a single issuer, its policy still tells.
    candidates = list(server.verifier.trusted.values())
    if trusted is None and len(candidates) == 1:
        trusted = candidates[0]
    if trusted is None:
        for name in CLAIM_STEPS:
            if name != "values":  # named only when Issuer.claim_values is configured
                report.add(name, "skipped", "not checked: no configured issuer applies")
        return None
    policy, now = trusted.policy, report.now
    exp, nbf, iat = (_time(claims, name) for name in ("exp", "nbf", "iat"))
    leeway = f"leeway {duration(policy.leeway)}"

    def step(name: str, check: Callable[[], object], describe: Callable[[bool], str]) -> None:
        # The same functions as check_claims and ResourceServer._accept, in the same order.
        try:
            check()
        except InvalidTokenError as exc:
            why = _type_error(name) if exc.reason is Reason.CLAIM_TYPE else describe(False)
            report.add(name, "failed", why, exc)
        else:
            report.add(name, "ok", describe(True))

    configured = " ".join(sorted(policy.audiences or ()))
    wanted = f"configured: {configured}" if configured else "any audience: audience=None"
    required = ", ".join(sorted(policy.required))
    missing = ", ".join(sorted(policy.required - claims.keys()))
    step(
        "required",
        lambda: check_required(claims, policy),
        lambda ok: f"present: {required}" if ok else f"missing: {missing}",
    )
    step(
        "iss",
        lambda: check_issuer(claims, policy),
        lambda ok: "exactly the configured issuer" if ok else f"not {policy.issuer!r}",
    )
    step(
        "aud",
        lambda: check_audience(claims, policy),
        lambda ok: f"{_aud(claims)} {'names' if ok else 'is not'} this resource ({wanted})",
    )
    if policy.values:  # Issuer.claim_values, shown only when configured
        expected = ", ".join(f"{n} in {sorted(v)}" for n, v in policy.values)
        step("values", lambda: check_values(claims, policy), lambda ok: f"expected: {expected}")
    step(
        "exp",
        lambda: check_expiry(claims, policy.leeway, now),
        lambda ok: _when(exp, now, "expires" if ok else "expired", leeway, "absent (not required)"),
    )
    step(
        "nbf",
        lambda: check_not_before(claims, policy.leeway, now),
        lambda ok: _when(nbf, now, "valid from" if ok else "not valid until", leeway, "absent"),
    )
    step(
        "iat",
        lambda: check_issued_at(claims, policy.leeway, now),
        lambda ok: _when(iat, now, "issued" if ok else "issued in the future,", leeway, "absent"),
    )
    limit = policy.max_token_age
    if limit is None:
        report.add("max age", "skipped", "no maximum token age configured")
    else:
        age = "no iat" if iat is None else f"age {duration(now - iat)}"
        step(
            "max age",
            lambda: check_max_age(exp, iat, policy, now),
            lambda ok: f"{age}, limit {duration(limit)} ({leeway})",
        )
    names = trusted.config.scope_claims
    step("scopes", lambda: read_scopes(claims, names), lambda ok: _scopes(claims, names))
    try:
        return read_scopes(claims, names)
    except InvalidTokenError:
        return None


def _when(at: float | None, now: float, verb: str, leeway: str, absent: str) -> str:
    if at is None:
        return absent
    return f"{verb} {relative(at - now)}: {utc(at)} ({leeway})"


def _time(claims: Mapping[str, Any], name: str) -> float | None:
    try:
        return time_claim(claims, name)
    except InvalidTokenError:
        return None  # reported by its own step


def _aud(claims: Mapping[str, Any]) -> str:
    try:
        return " ".join(repr(aud) for aud in audiences(claims)) or "an empty aud"
    except InvalidTokenError:
        return "no aud" if "aud" not in claims else repr(claims["aud"])


def _type_error(name: str) -> str:
    if name == "scopes":
        return "a scope claim is neither a space-separated string nor an array of strings"
    if name == "required":
        return "sub and jti must be strings"
    if name == "aud":
        return "aud is neither a string nor an array of strings"
    return f"{name} is not a number of seconds since 1970"


def _scopes(claims: Mapping[str, Any], names: Sequence[str]) -> str:
    found = []
    for name in names:
        try:
            scopes = read_scopes(claims, (name,))
        except InvalidTokenError:
            continue  # the step fails; nothing to list
        if scopes:
            found.append(f"{' '.join(sorted(scopes))} (from {name})")
    return "; ".join(found) or f"none (looked in {', '.join(names)})"
