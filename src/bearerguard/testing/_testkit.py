"""The test kit's bridge to bearerguard itself: the configuration that trusts a LocalIssuer, and
`AccessToken` values for unit tests of views.

`LocalIssuer` shares no code with the verifier on purpose; what is here is the other direction,
bearerguard's own values built for tests, so it uses bearerguard's own pieces (the scope reader,
the client-id rule, the read-only claims) and a token made here looks like a verified one.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .._config import Issuer, JWKSPolicy
from .._scopes import DEFAULT_SCOPE_CLAIMS, read_scopes
from .._token import AccessToken, client_id_of, freeze

if TYPE_CHECKING:
    from ._keys import KeysAndTokens

# A test rotates a key and, a moment later, sends a token of the new key: the production
# cool-down of 10 s between JWKS fetches would refuse it (UNKNOWN_KID). Everything else keeps
# its default, so the tests see the caching a deployment has.
TEST_JWKS_POLICY = JWKSPolicy(min_refetch_interval=0.0)


def issuer_config(local: KeysAndTokens, **overrides: Any) -> Issuer:
    """The `Issuer` that trusts `local` (started): its URL, audience and algorithms, the shared
    secret of its one HS* algorithm if it has one, and JWKS refetches without a cool-down.
    `overrides` are passed to `Issuer` as they are (e.g. `rfc9068=True`, `jwks_policy=...`)."""
    algorithms = overrides.get("algorithms", local.algorithms)
    settings: dict[str, Any] = {
        "issuer": local.issuer,
        "audience": local.audience,
        "algorithms": algorithms,
        "jwks_policy": TEST_JWKS_POLICY,
    }
    hmac = [alg for alg in algorithms if alg.startswith("HS")]
    if hmac and "shared_secret" not in overrides:
        if len(hmac) > 1:
            raise ValueError(
                f"an Issuer takes one shared secret, and {', '.join(hmac)} each have their own: "
                f"pass algorithms= and shared_secret=local_issuer.shared_secret(alg)"
            )
        settings["shared_secret"] = local.shared_secret(hmac[0])
    return Issuer(**(settings | overrides))


def access_token(
    *,
    scope: str | Sequence[str] | None = None,
    subject: str | None = "test-client",
    audience: str | Sequence[str] | None = "https://api.example.test",
    issuer: str = "https://issuer.example.test",
    expires_in: float | None = 300.0,
    source: Literal["jwt", "introspection"] = "jwt",
    clock: Callable[[], float] = time.time,
    omit: Iterable[str] = (),
    **claims: Any,
) -> AccessToken:
    """An `AccessToken` as a `ResourceServer` would return it for a JWT with these claims (the
    same ones `LocalIssuer.mint` puts in one), for unit tests of views without any server.

    As in `mint`: `client_id` is the subject unless given in `claims`; a list `scope` is a JSON
    array; `None` leaves out the claim of a named argument; `claims` add or override claims (a
    `None` there is a JSON null) and `omit` removes them. Scopes come from `scope` and `scp`.
    """
    now = clock()
    defaults = {
        "iss": issuer,
        "sub": subject,
        "aud": audience if audience is None or isinstance(audience, str) else list(audience),
        "iat": int(now),
        "exp": None if expires_in is None else int(now + expires_in),
        "jti": secrets.token_urlsafe(16),
        "client_id": subject,
        "scope": scope if scope is None or isinstance(scope, str) else list(scope),
    }
    document = {name: value for name, value in defaults.items() if value is not None} | claims
    for name in omit:
        document.pop(name, None)
    exp = document.get("exp")
    return AccessToken(
        issuer=document.get("iss", issuer),
        subject=document.get("sub"),
        client_id=client_id_of(document),
        scopes=read_scopes(document, DEFAULT_SCOPE_CLAIMS),
        claims=freeze(document),
        expires_at=None if exp is None else float(exp),
        source=source,
    )
