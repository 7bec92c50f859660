"""The engine of `bearerguard check`: run a ResourceServer's own checks on one token, one by one.

No check is written twice. Each step calls what `ResourceServer.verify` calls, in its order and
under its name (`_verifier.STEPS`: `Verifier.prepare`, `KeySource.key`, `Key.accepts`/`Key.verify`,
the claim steps of `_claims`, `read_scopes`, `check_binding`), through the server's public
`verifier` and `key_source`, so the first failure here is the refusal the server answers (RFC
6750 §3.1). Later steps still run where that means something, marked as deciding nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._errors import (
    InsufficientScopeError,
    InvalidTokenError,
    Reason,
    UpstreamUnavailableError,
)
from .._introspection import Introspector
from .._jose import UnverifiedJWT, parse
from .._keys import Key
from .._redact import safe_url
from .._scopes import Requirement
from .._server import ResourceServer
from .._trusted import Trusted
from .._verifier import KEY_STEPS, PREPARE_STEP_OF
from ._explain_binding import explain_binding
from ._explain_claims import explain_claims
from ._explain_introspection import explain_introspection
from ._report import Report
from ._timefmt import duration

# The server's own steps, named and ordered as it runs them (`_verifier.STEPS`).
_PREPARE_STEP = PREPARE_STEP_OF


def explain(
    server: ResourceServer,
    token: str,
    now: float,
    *,
    issuer_given: bool = True,
    required: Sequence[str] = (),
) -> Report:
    """Check `token` as `server` would at time `now` (the server's clock must say `now` too).

    `issuer_given=False` says the issuer was taken from the token itself, so that step proves
    nothing and is reported as skipped. `required` are scopes a route requires (all of them).
    """
    report = Report(now=now, token_bytes=len(token))
    try:
        route = server.verifier.prepare(token)
    except InvalidTokenError:
        route = None
    if isinstance(route, Introspector):  # the server would introspect it: so does check
        why = "not a JWT" if _parsed(token) is None else "a JWT of no configured issuer"
        why += ": the server introspects it (RFC 7662)"
        scopes = explain_introspection(server, route, token, report, why)
        explain_binding(report.claims if scopes is not None else None, report)
        _require(report, required, scopes)
        config = route.config
        report.notes.append(
            f"check asked the AS now; a running server answers from its cache for up to "
            f"{duration(config.cache_max_ttl)} after an accepting answer (until exp at most) "  # type: ignore[arg-type]
            f"and {duration(config.negative_ttl)} after a refusing one, so it may differ "  # type: ignore[arg-type]
            "for a token revoked or issued since"
        )
        return report
    trusted, jwt = _prepare(server, token, report, issuer_given)
    key = _key(server, trusted, jwt, report) if trusted and jwt else None
    if key is not None and jwt is not None:
        _signature(key, jwt, report)
    for name in KEY_STEPS:  # every report names every step
        if name not in (step.name for step in report.steps):
            report.add(name, "skipped", "not checked: an earlier check failed")
    scopes = explain_claims(server, trusted, jwt.claims, report) if jwt is not None else None
    explain_binding(jwt.claims if jwt is not None else None, report)
    _require(report, required, scopes)
    if trusted is not None and jwt is not None:
        _cached_keys_note(trusted, jwt, report)
        if server.verifier.confirms_jwts:
            report.notes.append(
                "introspect_jwts is on: the server also asks the AS whether this JWT is still "
                "active; check verifies it locally only"
            )
    return report


def _require(report: Report, required: Sequence[str], scopes: frozenset[str] | None) -> None:
    """`--require`: the route requirement the server checks after authentication (a 403)."""
    if not required:
        return
    requirement = Requirement.of(*required)
    wanted = " ".join(sorted(requirement.scopes))
    if scopes is None:
        report.add("require", "skipped", f"{wanted}: not checked, the scopes could not be read")
        return
    has = " ".join(sorted(scopes)) or "no scope"
    if requirement.met_by(scopes):  # what Requirement.check asks
        report.add("require", "ok", f"{wanted}: granted (the token has {has})")
        return
    missing = " ".join(sorted(requirement.scopes - scopes))
    detail = f"needs {wanted}; the token has {has} (missing {missing}): a 403 naming the scope"
    report.add("require", "failed", detail, InsufficientScopeError(requirement.scopes))


def _cached_keys_note(trusted: Trusted, jwt: UnverifiedJWT, report: Report) -> None:
    """Where a running server, holding keys fetched earlier, can answer otherwise than check."""
    cache = trusted.keys
    if cache is None or jwt.alg.startswith("HS"):
        return  # the shared secret: nothing is cached that could differ
    policy = cache.policy
    kid = repr(jwt.kid) if jwt.kid is not None else "(no kid)"
    steps = {step.name: step for step in report.steps}
    kid_step = steps.get("kid")
    if kid_step is None or kid_step.status == "skipped":
        return
    ttl = cache.keys.ttl if cache.keys else policy.default_ttl
    if kid_step.status == "ok":
        report.notes.append(
            f"check fetched the keys now; a running server whose keys predate kid {kid} "
            "refuses this token (UNKNOWN_KID) until it refetches, at most once per "
            f"{duration(policy.min_refetch_interval)} (min_refetch_interval)"
        )
    else:
        report.notes.append(
            f"check fetched the keys now; a running server that fetched them while kid {kid} "
            f"was still published keeps trusting it for up to {duration(ttl)} (the JWKS TTL), "
            f"and {duration(policy.stale_if_error)} more while the issuer is down"
        )


def _prepare(
    server: ResourceServer, token: str, report: Report, issuer_given: bool
) -> tuple[Trusted | None, UnverifiedJWT | None]:
    error: InvalidTokenError | None = None
    trusted: Trusted | None = None
    jwt: UnverifiedJWT | None = None
    try:
        route = server.verifier.prepare(token)
        if not isinstance(route, tuple):  # unreachable: check's server never introspects
            raise InvalidTokenError(Reason.UNKNOWN_ISSUER)
        trusted, jwt = route
    except InvalidTokenError as exc:
        error, jwt = exc, _parsed(token)
    if jwt is not None:
        report.header, report.claims = jwt.header, jwt.claims
    iss = jwt.claims.get("iss") if jwt else None
    known = server.verifier.trusted.get(iss) if isinstance(iss, str) else None
    failed_at = _PREPARE_STEP.get(error.reason) if error else None
    if error is not None and failed_at is None:  # a check this explainer does not name yet
        report.add("prepare", "failed", error.reason.value, error)
    details: dict[str, Callable[[], str]] = {
        "size": lambda: f"{len(token)} bytes (limit {server.max_token_bytes})",
        "parse": lambda: "compact JWS: three base64url segments, JSON header and claims",
        "header": lambda: _header(jwt),
        "issuer": lambda: f"iss {iss!r} is a configured issuer",
        "algorithm": lambda: f"{jwt.alg} is allowed" if jwt else "",
        "type": lambda: f"typ {jwt.header.get('typ')!r} is at+jwt (RFC 9068)" if jwt else "",
    }
    for name in _PREPARE_STEP.values():
        if error is not None and name == failed_at:
            report.add(name, "failed", _prepare_failure(name, error, iss, known, server), error)
        elif report.failure is not None:
            report.add(name, "skipped", "not checked: an earlier check failed")
        elif name == "issuer" and not issuer_given:
            report.add(name, "skipped", f"iss {iss!r} taken from the token: --issuer checks it")
        elif name == "type" and not (known and known.config.rfc9068):
            report.add(name, "skipped", "not checked: RFC 9068 mode is off")
        else:
            report.add(name, "ok", details[name]())
    return trusted, jwt


def _prepare_failure(
    name: str, error: InvalidTokenError, iss: Any, known: Trusted | None, server: ResourceServer
) -> str:
    if name in ("parse", "header"):
        return str(error.__cause__ or error)
    if name == "issuer":
        configured = ", ".join(safe_url(t.config.issuer) for t in server.verifier.trusted.values())
        what = f"iss {iss!r}" if isinstance(iss, str) else "the token has no string iss, so it"
        return f"{what} is not a configured issuer ({configured})"
    if name == "algorithm" and known is not None:
        return f"not in this issuer's allow-list: {' '.join(known.config.algorithms)}"
    if name == "type":
        return "RFC 9068 mode wants typ at+jwt"
    return error.reason.value


def _header(jwt: UnverifiedJWT | None) -> str:
    if jwt is None:
        return ""
    typ = jwt.header.get("typ")
    return f"alg {jwt.alg}, kid {jwt.kid!r}, typ {typ!r}; no parameter that picks a key"


def _parsed(token: str) -> UnverifiedJWT | None:
    try:
        return parse(token)
    except InvalidTokenError:
        return None


def _key(
    server: ResourceServer, trusted: Trusted, jwt: UnverifiedJWT, report: Report
) -> Key | None:
    # The same expression as ResourceServer.verify: the shared secret for HS*, else the JWKS.
    try:
        key = server.key_source.key(trusted, jwt)  # the server's own key selection
    except UpstreamUnavailableError as exc:
        last_error = trusted.keys.last_error if trusted.keys else None
        report.add("keys", "failed", f"could not fetch the keys: {last_error}", exc)
        return None
    except InvalidTokenError as exc:
        report.add("keys", "ok", _keys_detail(trusted))
        kids = ", ".join(repr(kid) for kid in sorted(_kids(trusted), key=str))
        what = f"kid {jwt.kid!r} is not" if jwt.kid is not None else "no kid, and not one key"
        report.add("kid", "failed", f"{what} among the published keys: {kids}", exc)
        return None
    report.add("keys", "ok", _keys_detail(trusted))
    if key is trusted.secret:
        report.add("kid", "skipped", "not needed: the shared secret verifies HS* tokens")
    else:
        found = f"kid {key.kid!r}" if jwt.kid is not None else "no kid; the one key that fits"
        report.add("kid", "ok", f"{found}: {key.kty}{' ' + key.crv if key.crv else ''} key")
    return key


def _kids(trusted: Trusted) -> frozenset[str | None]:
    keys = trusted.keys.keys if trusted.keys else None
    return keys.kids if keys else frozenset()


def _keys_detail(trusted: Trusted) -> str:
    cache = trusted.keys
    if cache is None or cache.keys is None:
        return "the configured shared secret (never printed)"
    how = "by discovery; the metadata names this issuer" if cache.metadata else "configured"
    count, ttl, uri = len(cache.keys.keys), duration(cache.keys.ttl), safe_url(cache.jwks_uri or "")
    return f"{count} key{'s' * (count != 1)} from {uri} ({how}), fresh for {ttl}"


def _signature(key: Key, jwt: UnverifiedJWT, report: Report) -> None:
    # The same two checks, in the same order, as ResourceServer._accept.
    if not key.accepts(jwt.alg):
        pinned = f", pinned to {key.alg}" if key.alg else ""
        detail = (
            f"a {key.kty}{' ' + key.crv if key.crv else ''} key{pinned} cannot verify {jwt.alg}"
        )
        report.add("key", "failed", detail, InvalidTokenError(Reason.ALGORITHM))
        report.add("signature", "skipped", "not checked: the key does not fit")
        return
    report.add("key", "ok", f"{key.kty} key fits {jwt.alg}")
    if not key.verify(jwt.alg, jwt.signing_input, jwt.signature):
        detail = f"{jwt.alg} signature does not verify with this key"
        report.add("signature", "failed", detail, InvalidTokenError(Reason.BAD_SIGNATURE))
        return
    report.verified = True
    report.add("signature", "ok", f"{jwt.alg} signature verifies")
