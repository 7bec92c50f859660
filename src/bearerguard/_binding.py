"""Checking that an access token is bound to its sender: to the DPoP proof's key (`cnf.jkt`,
RFC 9449 §6, §7) or to the client certificate of the TLS connection (`cnf["x5t#S256"]`,
RFC 8705 §3). Pure: it compares what the token's confirmation claim says with what the request
proved (a `DPoPProof` from `verify_proof`, a certificate thumbprint from `_thumbprint`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NoReturn

from ._errors import DPoPBindingError, InvalidTokenError, Reason

if TYPE_CHECKING:
    from ._dpop import DPoPProof


def check_binding(
    cnf: object,
    proof: DPoPProof | None,
    cert_thumbprint: str | None,
    scheme: str,
    *,
    algs: Iterable[str] = (),
) -> None:
    """Check an accepted token's confirmation claim (`cnf`, from the JWT or the introspection
    answer) against the request's proof of possession. Raises `InvalidTokenError`:

    - `cnf.jkt` (RFC 9449 §6): the token must come with the `DPoP` scheme (§7.2: never as a
      bearer token) and `proof` (from `verify_proof`) must be signed by that key;
    - the `DPoP` scheme with a token that has no `cnf.jkt` is refused too: the scheme is for
      DPoP-bound tokens (§7.1), and a proof can prove nothing about an unbound token;
    - `cnf["x5t#S256"]` (RFC 8705 §3): `cert_thumbprint`, of the client certificate of this
      request's TLS connection (see `_thumbprint`), must equal it;
    - any other confirmation method is refused, as it cannot be checked here (fail closed);
    - a token without `cnf` (or with an empty one) sent with the Bearer scheme is not bound.

    `scheme` is the Authorization header's scheme (any case); with `DPoP`, refusals are
    `DPoPBindingError`s, whose challenge names `algs`.
    """
    dpop = scheme.lower() == "dpop"
    algs = tuple(algs)

    def refuse(reason: Reason) -> NoReturn:
        raise DPoPBindingError(reason, algs=algs) if dpop else InvalidTokenError(reason)

    if cnf is None:
        cnf = {}
    if not isinstance(cnf, Mapping):
        refuse(Reason.CLAIM_TYPE)
    jkt, x5t = cnf.get("jkt"), cnf.get("x5t#S256")
    if any(name not in ("jkt", "x5t#S256") for name in cnf):
        refuse(Reason.CONFIRMATION)
    # A member present is a string: `"jkt": null` is malformed, not absent (fail closed).
    if ("jkt" in cnf and type(jkt) is not str) or ("x5t#S256" in cnf and type(x5t) is not str):
        refuse(Reason.CLAIM_TYPE)
    if jkt is None:
        if dpop:
            refuse(Reason.DPOP_UNBOUND)
    elif not dpop:
        refuse(Reason.DPOP_DOWNGRADE)
    elif proof is None or proof.jkt != jkt:
        refuse(Reason.DPOP_BINDING)
    if x5t is not None and (cert_thumbprint is None or cert_thumbprint != x5t):
        refuse(Reason.CERT_BINDING)
