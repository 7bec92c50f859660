"""Shared set-up: realistic tokens from a `LocalIssuer`, warmed servers, and the no-I/O guard."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jwt
from harness import Case

from bearerguard import Issuer, ResourceServer
from bearerguard.testing import LocalIssuer

AUDIENCE = "api://orders"
# A realistic client-credentials access token: RFC 9068 header and claims, as Entra ID, Auth0 or
# node-oidc-provider issue them, with a few dotted permission scopes (about 800 bytes with RS256).
SCOPES = ("orders.read", "orders.write", "invoices.read", "customers.read")
EXTRA_CLAIMS: dict[str, Any] = {
    "azp": "0f5c3a1e-6b7d-4e0a-9c2f-3a8b7d6e5f41",
    "tid": "8eaef023-2b34-4da1-9baa-8bc8c9d6a490",
    "gty": "client-credentials",
}


def mint(issuer: LocalIssuer, alg: str, count: int, scopes: Sequence[str] = SCOPES) -> list[str]:
    """`count` distinct tokens (each has its own `jti`), valid for the next hour."""
    return [
        issuer.mint(alg=alg, scope=" ".join(scopes), expires_in=3600, **EXTRA_CLAIMS)
        for _ in range(count)
    ]


def config(issuer: LocalIssuer, alg: str, **overrides: Any) -> Issuer:
    """The `Issuer` that trusts `issuer` for `alg`: its JWKS, or its shared secret for HS*."""
    options: dict[str, Any] = {"issuer": issuer.issuer, "audience": AUDIENCE, "algorithms": [alg]}
    if alg.startswith("HS"):
        options["shared_secret"] = issuer.shared_secret(alg)
    else:
        options["jwks_uri"] = issuer.jwks_uri
    return Issuer(**(options | overrides))


def warmed(configs: Issuer | Sequence[Issuer], **options: Any) -> ResourceServer:
    """A server whose keys are fetched now, so that the measured loops never do I/O."""
    server = ResourceServer(configs, **options)
    for status in server.warm():
        if not status.fresh and status.jwks_uri and "127.0.0.1" in status.jwks_uri:
            raise RuntimeError(f"could not warm the keys of {status.issuer}: {status.last_error}")
    return server


def bearerguard_cases(server: ResourceServer, tokens: list[str], label: str = "") -> list[Case]:
    """`verify()` on tokens never seen (the verified-token cache emptied before each round) and
    on tokens seen before (cache hits)."""
    suffix = f" {label}" if label else ""
    for token in tokens:  # fills the cache for the warm case; also checks every token is good
        server.verify(token)
    return [
        Case(f"bearerguard verify() cold{suffix}", server.verify, tokens, reset=_forget(server)),
        Case(f"bearerguard verify() warm{suffix}", server.verify, tokens),
    ]


def _forget(server: ResourceServer) -> Callable[[], None]:
    # The benchmark reaches into the server on purpose: the only way to make a token unseen again
    # without minting a new one. Emptying happens between rounds, outside the timed loop.
    return server._tokens.clear


def pyjwt_decoder(issuer: LocalIssuer, alg: str) -> Callable[[str], Any]:
    """PyJWT's `jwt.decode` with a preloaded key and the same audience, issuer and exp checks."""
    key = verification_key(issuer, alg)
    options = {"require": ["exp", "iss", "aud"]}

    def decode(token: str) -> Any:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=AUDIENCE,
            issuer=issuer.issuer,
            leeway=30,
            options=options,  # type: ignore[arg-type]
        )

    return decode


def verification_key(issuer: LocalIssuer, alg: str) -> Any:
    if alg.startswith("HS"):
        return issuer.shared_secret(alg)
    return issuer.private_key(issuer.kid(alg)).public_key()


def no_io_guard(issuers: Sequence[LocalIssuer]) -> Callable[[], list[str]]:
    """Fails the group if any issuer was asked for anything after set-up (no I/O in the loop)."""
    before = [issuer.count() for issuer in issuers]

    def check() -> list[str]:
        after = [issuer.count() for issuer in issuers]
        if after != before:
            raise RuntimeError(f"requests to the issuer during measurement: {before} -> {after}")
        return ["no request reached the issuer while measuring (keys fetched before)"]

    return check
