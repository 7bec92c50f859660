"""Checking that an access token is bound to its sender: to the DPoP proof's key (`cnf.jkt`,
RFC 9449 §6, §7) or to the client certificate of the TLS connection (`cnf["x5t#S256"]`,
RFC 8705 §3). Pure: it compares what the token's confirmation claim says with what the request
proved (a `DPoPProof` from `verify_proof`, a client certificate read by the request's adapter).

The one place both bindings are judged, whatever the server's DPoP mode: DPoP's
`SenderCheck.bind` calls it, and so does the server with DPoP off (`_constrained.certified`),
where every request is a Bearer request and a DPoP-bound token is therefore refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NoReturn

from ._errors import DPoPBindingError, InvalidTokenError, Reason
from ._thumbprint import CertificateFormatError, client_thumbprint

if TYPE_CHECKING:
    from ._dpop import DPoPProof


def check_binding(
    cnf: object,
    proof: DPoPProof | None,
    certificate: str | None,
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
    - `cnf["x5t#S256"]` (RFC 8705 §3): the SHA-256 thumbprint of `certificate`, the request's
      client certificate (a PEM certificate or an Envoy XFCC element, see `client_thumbprint`),
      must equal it: none or another is `CERT_BINDING`, an unreadable one `CERT_MALFORMED`
      (both 401 `invalid_token`). The certificate is parsed only here, for a token that names
      one;
    - any other confirmation method is refused, as it cannot be checked here (fail closed);
    - a token without `cnf` (or with an empty one) sent with the Bearer scheme is not bound.

    A server with DPoP off judges its Bearer requests by the same rules: an authorization server
    that binds a token expects the resource server to check the binding, so a binding that
    cannot be checked there (`cnf.jkt` without the DPoP scheme, an unknown method) refuses the
    token (fail closed), and a certificate-bound token still needs its certificate.

    `scheme` is the Authorization header's scheme (any case); with `DPoP`, refusals are
    `DPoPBindingError`s, whose challenge names `algs`.
    """
    is_dpop = scheme.lower() == "dpop"
    algs = tuple(algs)

    def refuse(reason: Reason) -> NoReturn:
        raise DPoPBindingError(reason, algs=algs) if is_dpop else InvalidTokenError(reason)

    if cnf is None:
        cnf = {}
    if not isinstance(cnf, Mapping):
        refuse(Reason.CLAIM_TYPE)
    jkt = cnf.get("jkt")
    if any(name not in ("jkt", "x5t#S256") for name in cnf):
        refuse(Reason.CONFIRMATION)
    # A member present is a string: `"jkt": null` is malformed, not absent (fail closed).
    if "jkt" in cnf and type(jkt) is not str:
        refuse(Reason.CLAIM_TYPE)
    if "x5t#S256" in cnf and type(cnf["x5t#S256"]) is not str:
        refuse(Reason.CLAIM_TYPE)
    if jkt is None:
        if is_dpop:
            refuse(Reason.DPOP_UNBOUND)
    elif not is_dpop:
        refuse(Reason.DPOP_DOWNGRADE)
    elif proof is None or proof.jkt != jkt:
        refuse(Reason.DPOP_BINDING)
    if "x5t#S256" in cnf and (reason := _certificate_refusal(cnf["x5t#S256"], certificate)):
        refuse(reason)


def _certificate_refusal(x5t: object, certificate: str | None) -> Reason | None:
    """Why the token's `x5t#S256` does not bind it to the request's client certificate, or
    None if it does: a thumbprint that is not a string, no certificate, an unreadable one
    (from a misconfigured terminator: never parsed unless a token names a certificate), or
    another certificate."""
    if type(x5t) is not str:
        return Reason.CLAIM_TYPE
    if certificate is None:
        return Reason.CERT_BINDING
    try:
        thumbprint = client_thumbprint(certificate)
    except CertificateFormatError:
        return Reason.CERT_MALFORMED
    return None if thumbprint == x5t else Reason.CERT_BINDING  # public values: no timing
