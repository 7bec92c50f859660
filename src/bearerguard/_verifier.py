"""The verification order, as one explicit list, and its steps before the key: no I/O, no state.

`ResourceServer` runs these steps on a verified-token cache miss, and `bearerguard check` runs
the same ones and names them by `STEPS`, so the first failure it reports is the server's refusal:

1. `Verifier.prepare` (here): `size` (the cap, before any other work), `parse` (the strict
   compact-JWS parse) and `header` (no parameter that picks a key), `issuer` (by `iss`: an
   unknown issuer costs no I/O), `algorithm` (the issuer's allow-list), `type` (RFC 9068 `typ`);
   a token that is not a JWS goes to introspection instead, when it is configured;
2. `KeySource.key`: `keys` (fetched at most once, single flight) and `kid`;
3. `Trusted.accept`: `key` (the key fits `alg`) and `signature`, then the claims of
   `_claims.check_claims`: `required`, `iss`, `aud`, `values`, `exp`, `nbf`, `iat`, `max age`,
   and `scopes` (read from the scope claims);
4. after the caches, in the server: revocation by introspection (`introspect_jwts`), the
   token's `binding` (its `cnf`, RFC 9449 / RFC 8705: `_binding.check_binding`, for the
   request's proof or certificate), then role resolution, then the route's requirement
   (`require`, a 403).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._claims import check_type
from ._errors import InvalidTokenError, Reason, seen_in
from ._jose import UnverifiedJWT, looks_like_jws, parse
from ._logfields import did_you_mean, near_issuers

if TYPE_CHECKING:  # the server imports them: no import level spent here
    from ._introspection import Introspector
    from ._trusted import Trusted

PREPARE_STEPS = ("size", "parse", "header", "issuer", "algorithm", "type")
KEY_STEPS = ("keys", "kid", "key", "signature")
CLAIM_STEPS = ("required", "iss", "aud", "values", "exp", "nbf", "iat", "max age", "scopes")
BINDING_STEP = "binding"
STEPS = (*PREPARE_STEPS, *KEY_STEPS, *CLAIM_STEPS, BINDING_STEP)

# `Verifier.prepare` raises a distinct reason at each of its steps: it names the step.
PREPARE_STEP_OF = dict(
    zip(
        (
            Reason.TOO_LARGE,
            Reason.MALFORMED,
            Reason.UNSUPPORTED_HEADER,
            Reason.UNKNOWN_ISSUER,
            Reason.ALGORITHM,
            Reason.TYPE,
        ),
        PREPARE_STEPS,
        strict=True,
    )
)


class Verifier:
    """A server's configured issuers and routes, and the steps that need neither key nor I/O.

    `introspector` is asked about tokens that are not JWSs (opaque ones), `foreign` about JWTs
    of issuers not configured here (`introspect_foreign_jwts`); `confirms_jwts` says verified
    JWTs are confirmed by introspection too (`introspect_jwts`).
    """

    def __init__(
        self,
        trusted: Mapping[str, Trusted],
        max_token_bytes: int,
        *,
        introspector: Introspector | None = None,
        foreign: Introspector | None = None,
        confirms_jwts: bool = False,
    ) -> None:
        self.trusted = dict(trusted)
        self.max_token_bytes = max_token_bytes
        self.introspector = introspector
        self.foreign = foreign
        self.confirms_jwts = confirms_jwts
        self._near = near_issuers(self.trusted)  # for "did you mean" in refusal logs

    def prepare(self, token: str) -> tuple[Trusted, UnverifiedJWT] | Introspector:
        """The issuer that verifies `token` locally, or the introspector that must be asked."""
        if len(token) > self.max_token_bytes:
            raise InvalidTokenError(Reason.TOO_LARGE)  # before any other work
        try:
            jwt = parse(token)
        except InvalidTokenError:
            # Not a JWS: opaque, only the AS can tell. A JWS that fails the strict parse is
            # refused whoever issued it: which issuer it names cannot be trusted either.
            if self.introspector is None or looks_like_jws(token):
                raise
            return self.introspector
        iss = jwt.claims.get("iss")
        trusted = self.trusted.get(iss) if isinstance(iss, str) else None
        try:
            if trusted is None:
                if self.foreign is not None:
                    return self.foreign  # a JWT of an issuer we do not verify: asked on request
                raise InvalidTokenError(Reason.UNKNOWN_ISSUER)  # no network traffic for strangers
            if jwt.alg not in trusted.algorithms:
                raise InvalidTokenError(Reason.ALGORITHM)
            check_type(jwt.header, rfc9068=trusted.config.rfc9068)
        except InvalidTokenError as exc:  # the log names what the token names, as unverified
            hint = did_you_mean(iss, self._near) if trusted is None else None
            exc.seen = seen_in(jwt.header, jwt.claims, verified=False)._replace(hint=hint)
            raise
        return trusted, jwt
