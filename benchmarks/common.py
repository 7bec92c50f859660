"""Shared set-up: realistic tokens from a `LocalIssuer`, warmed servers, streams of never-seen
tokens in front of full caches, the peers (PyJWT, authlib), and the no-I/O guard."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import jwt
from harness import Case, Settings
from reference import Verifier

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


DEFAULT_CACHE_SIZE: int = inspect.signature(ResourceServer).parameters["token_cache_size"].default


def hits(tokens: Sequence[Any], count: int) -> list[Any]:
    """`count` of `tokens` spread evenly over them: the tokens a hit case asks for again."""
    step = max(1, len(tokens) // count)
    return list(tokens[::step][:count])


def filled(
    server: ResourceServer, tokens: Sequence[str], settings: Settings, size: int
) -> list[str]:
    """Verify `size` of `tokens` into `server` (its cache full, no eviction yet) and return the
    tokens its hit cases ask for, spread over what it holds."""
    held = list(tokens[:size])
    for token in held:  # also checks that every token is good
        server.verify(token)
    return hits(held, settings.pool)


class Cases(NamedTuple):
    """bearerguard's cases on one stream: `cold` (never seen, by `cold_server`, its cache full and
    evicting), `warm` (hits on `server`, whose cache is full), and `check` for the group's
    `after` (the stream missed, every round)."""

    cold: Case
    warm: Case
    server: ResourceServer
    cold_server: ResourceServer
    check: Callable[[], list[str]]


def bearerguard_cases(
    make: Callable[..., ResourceServer],
    tokens: list[str],
    settings: Settings,
    label: str = "",
    cache_size: int | None = None,
) -> Cases:
    """`verify()` on a stream of tokens never seen, by a server whose cache (`cache_size`, the
    settings' by default: the library's default in a full run) is kept full and evicting, and on
    tokens seen before, by a second server whose cache is full. `tokens` is a stream:
    `settings.stream_size(cache_size)` of them."""
    suffix = f" {label}" if label else ""
    size = settings.cache_size if cache_size is None else cache_size
    cold_server = make(token_cache_size=size)
    warm_server = make(token_cache_size=size)
    cold = Case(
        f"bearerguard verify() cold{suffix}",
        cold_server.verify,
        tokens,
        per_round=settings.per_round(size),
    )
    warm = Case(
        f"bearerguard verify() warm{suffix}",
        warm_server.verify,
        filled(warm_server, tokens, settings, size),
    )
    check = stream_check(cold, ServerCache(cold_server), size)
    return Cases(cold, warm, warm_server, cold_server, check)


def uncached(settings: Settings, items: Sequence[Any]) -> dict[str, Any]:
    """`Case` options for an operation with no cache in front (a peer, the signature alone, the
    cache turned off): as many calls per round as a stream case, from a pool twice that size
    (fresh copies each call; nothing to fill, so no long warm-up over the whole stream)."""
    per_round = settings.per_round()
    return {"items": list(items[: 2 * per_round]), "per_round": per_round}


class Held(Protocol):
    """What a stream check asks of a cache: is this token held, and how many are."""

    def __contains__(self, token: object, /) -> bool: ...
    def __len__(self) -> int: ...


class ServerCache:
    """A server's verified-token cache as `Held`, through the one lookup every request makes
    (`ResourceServer._hit`), so the check does not depend on how the cache keys its entries."""

    def __init__(self, server: ResourceServer) -> None:
        self.server = server

    def __contains__(self, token: object, /) -> bool:
        return isinstance(token, str) and self.server._hit(token) is not None

    def __len__(self) -> int:
        return len(self.server._tokens)


def stream_check(case: Case, cache: Held, capacity: int) -> Callable[[], list[str]]:
    """After measuring: the cache in front of a stream case is full (it was evicting all along)
    and holds none of the next round's tokens (each call of a round was a miss)."""

    def check() -> list[str]:
        count, per_round = len(case.items), case.per_round or 0
        upcoming = [case.items[(case.cursor + i) % count] for i in range(per_round)]
        if any(token in cache for token in upcoming):
            raise RuntimeError(f"{case.name}: a token of the stream was still cached")
        if len(cache) < 0.85 * capacity:
            raise RuntimeError(f"{case.name}: its cache held {len(cache)} of {capacity} entries")
        return [
            f"{case.name}: {per_round} never-seen tokens per round from a stream of {count},"
            f" through a full cache of {capacity} (held {len(cache)} at the end)"
        ]

    return check


def minimal_cases(
    make: Callable[..., Verifier],
    tokens: list[str],
    settings: Settings,
    label: str = "",
    cache_size: int | None = None,
) -> tuple[list[Case], Callable[[], list[str]]]:
    """The minimal verifier keeping its results (`Verifier.check`), as `bearerguard_cases`: a
    stream of never-seen tokens through its full bounded map, and hits on a second, full one."""
    suffix = f" {label}" if label else ""
    size = settings.cache_size if cache_size is None else cache_size
    cold, warm = make(keep=size), make(keep=size)
    held = tokens[:size]
    for token in held:
        warm.check(token)
    miss = Case(
        f"minimal verifier, keeping (reference.py){suffix}",
        cold.check,
        tokens,
        per_round=settings.per_round(size),
    )
    hit = Case(f"minimal verifier, keeping, hit{suffix}", warm.check, hits(held, settings.pool))
    return [miss, hit], stream_check(miss, cold.kept, cold.keep)


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


def authlib_decoder(issuer: LocalIssuer, alg: str) -> Callable[[str], Any] | None:
    """authlib's `JsonWebToken.decode` plus `validate` (iss, aud, exp required; leeway), with a
    preloaded key; None when authlib is not installed (it is not a dependency)."""
    try:
        # authlib.deprecate installs an "always" filter for its warnings: imported first, the
        # filter below then wins over it.
        import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401, PLC0415

        with warnings.catch_warnings():  # authlib.jose announces its move to joserfc
            warnings.simplefilter("ignore")
            from authlib.jose import (  # type: ignore[import-untyped]  # noqa: PLC0415
                JsonWebKey,
                JsonWebToken,
            )
    except ImportError:
        return None
    if alg.startswith("HS"):
        key: Any = issuer.shared_secret(alg)
    else:
        (jwk,) = [k for k in issuer.jwks()["keys"] if k.get("kid") == issuer.kid(alg)]
        key = JsonWebKey.import_key(jwk)
    decoder = JsonWebToken([alg])
    options = {
        "iss": {"essential": True, "value": issuer.issuer},
        "aud": {"essential": True, "value": AUDIENCE},
        "exp": {"essential": True},
    }

    def decode(token: str) -> Any:
        claims = decoder.decode(token, key, claims_options=options)
        claims.validate(leeway=30)
        return claims

    return decode


def verification_key(issuer: LocalIssuer, alg: str) -> Any:
    if alg.startswith("HS"):
        return issuer.shared_secret(alg)
    return issuer.private_key(issuer.kid(alg)).public_key()


def minimal_verifier(issuer: LocalIssuer, alg: str, **options: Any) -> Verifier:
    """reference.py's minimal verifier of `issuer`'s `alg` tokens for `AUDIENCE` (`keep=`,
    `max_bytes=` as `options`)."""
    key = verification_key(issuer, alg)
    kid, name = issuer.kid(alg), issuer.issuer
    return Verifier(alg=alg, key=key, kid=kid, issuer=name, audience=AUDIENCE, **options)


def no_io_guard(issuers: Sequence[LocalIssuer]) -> Callable[[], list[str]]:
    """Fails the group if any issuer was asked for anything after set-up (no I/O in the loop)."""
    before = [issuer.count() for issuer in issuers]

    def check() -> list[str]:
        after = [issuer.count() for issuer in issuers]
        if after != before:
            raise RuntimeError(f"requests to the issuer during measurement: {before} -> {after}")
        return ["no request reached the issuer while measuring (keys fetched before)"]

    return check
