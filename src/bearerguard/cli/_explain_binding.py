"""`bearerguard check`'s `binding` step: the token's `cnf` judged as the server judges a Bearer
request that carries the token alone (`_binding.check_binding`), which is what check models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._binding import check_binding
from .._errors import InvalidTokenError, Reason
from .._verifier import BINDING_STEP
from ._report import Report


def explain_binding(claims: Mapping[str, Any] | None, report: Report) -> None:
    """The `binding` step of `claims` (the JWT's, or the introspection answer's); skipped when
    an earlier step left nothing to read."""
    if claims is None:
        report.add(BINDING_STEP, "skipped", "not checked: an earlier check failed")
        return
    if "cnf" not in claims:
        report.add(BINDING_STEP, "ok", "not bound (no cnf): a bearer token")
        return
    cnf = claims["cnf"]
    try:
        check_binding(cnf, None, None, "Bearer")
    except InvalidTokenError as exc:
        report.add(BINDING_STEP, "failed", _refusal(exc.reason, cnf), exc)
    else:
        report.add(BINDING_STEP, "ok", "cnf names no binding: a bearer token")


def _refusal(reason: Reason | None, cnf: Any) -> str:
    """Why a request with this token alone is refused, and what the server would accept."""
    if reason is Reason.DPOP_DOWNGRADE:
        return (
            f"bound to a DPoP key (cnf.jkt {cnf['jkt']!r}): refused as a bearer token (RFC 9449 "
            "§7.2); a server with dpop= on accepts it with the DPoP scheme and a proof signed by "
            "that key, which check cannot make"
        )
    if reason is Reason.CERT_BINDING:
        return (
            f"bound to a client certificate (cnf x5t#S256 {cnf['x5t#S256']!r}): refused without "
            "it; the server accepts it on a request whose client certificate (TLS, or a trusted "
            "proxy's header) has that thumbprint (RFC 8705 §3), which check cannot present"
        )
    if reason is Reason.CONFIRMATION:
        names = ", ".join(sorted(map(str, cnf)))
        return f"bound by a confirmation method bearerguard does not check ({names}): refused"
    return "cnf is not a JSON object, or one of its members is not a string"
