"""A trusted issuer compiled for the request path, and the pure step that accepts its JWTs.

`Trusted.accept` runs, in order, the checks that follow getting the key: the key agrees with
`alg` (kty, crv, the JWK's own alg), the signature, the registered claims (RFC 7519 §4.1), and
then builds the `AccessToken`. It does no I/O and keeps no state, so `bearerguard check` and the
server share it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ._claims import ClaimsPolicy, check_claims
from ._config import Issuer
from ._errors import InvalidTokenError, Reason
from ._events import Events
from ._jose import UnverifiedJWT
from ._jwks import JWKSCache
from ._keys import Key
from ._scopes import ScopeSets, read_scopes
from ._token import AccessToken, client_id_of, freeze, issued
from ._types import Clock

_intern = sys.intern  # not immortal: gone with the last token that holds it


@dataclass(frozen=True, slots=True)
class Trusted:
    """One configured issuer: its claims policy, allowed algorithms, and where its keys are."""

    config: Issuer
    policy: ClaimsPolicy
    algorithms: frozenset[str]
    keys: JWKSCache | None  # None for an issuer that only uses a shared secret
    secret: Key | None
    scope_sets: ScopeSets = field(default_factory=ScopeSets, repr=False)

    @classmethod
    def compile(cls, config: Issuer, events: Events | None = None) -> Trusted:
        keys = None
        if config.uses_jwks:
            keys = JWKSCache(
                config.issuer,
                jwks_uri=config.jwks_uri,
                discovery_urls=config.discovery_urls,
                policy=config.jwks_policy,
                allow_http=config.allow_http,
                events=events,
            )
        secret = config.secret_bytes
        return cls(
            config=config,
            policy=config.claims_policy(),
            algorithms=frozenset(config.algorithms),
            keys=keys,
            secret=None if secret is None else Key.from_secret(secret),
        )

    def ready_key(self, jwt: UnverifiedJWT, timer: Clock) -> Key | None:
        """The key for `jwt` that needs no fetch: the shared secret for HS*, or a key of the
        JWKS while it is within its TTL. None: the key must be fetched (or does not exist)."""
        # Every other allowed alg has a JWKS (see Issuer), and alg is in the allow-list here.
        if self.keys is None or jwt.alg.startswith("HS"):
            return self.secret
        return self.keys.fresh(jwt.kid, jwt.alg, timer())

    def accept(
        self, jwt: UnverifiedJWT, key: Key, now: float, token: str | None = None
    ) -> tuple[AccessToken, float]:
        """The verified token and the time after which it must not be served from a cache.

        With `token` (the JWT `jwt` was parsed from), the claims are kept undecoded until first
        read (`AccessToken.claims`): what the cache keeps is then the token string it keys by.
        """
        if not key.accepts(jwt.alg):
            raise InvalidTokenError(Reason.ALGORITHM)  # e.g. an RSA key named by an ES256 token
        if not key.verify(jwt.alg, jwt.signing_input, jwt.signature):
            raise InvalidTokenError(Reason.BAD_SIGNATURE)
        claims = jwt.claims
        deadline = check_claims(claims, self.policy, now)
        exp, sub = claims.get("exp"), claims.get("sub")
        client_id = client_id_of(claims, self.config.client_id_claims)
        access = issued(
            issuer=self.config.issuer,
            # One string per client, not per token: a client's tokens repeat both (a client
            # credentials token's subject is its client), and a cached token keeps them.
            subject=_intern(sub) if type(sub) is str else sub,
            client_id=None if client_id is None else _intern(client_id),
            scopes=read_scopes(claims, self.config.scope_claims, self.scope_sets),
            claims=freeze(claims, flat=jwt.flat) if token is None else token,
            expires_at=None if exp is None else float(exp),
            source="jwt",
        )
        return access, deadline
