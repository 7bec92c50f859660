"""How a `ResourceServer` is put together: its issuers, introspectors, store and role resolvers,
from its arguments or from the environment. Everything here runs once, at construction."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._config import Issuer
from ._config_introspection import Introspection
from ._env import introspection_from_env, issuers_from_env, server_options_from_env, store_from_env
from ._errors import ConfigurationError
from ._events import Events
from ._fetch import HTTP
from ._introspection import Introspector
from ._limit import CallLimit
from ._roles import RoleResolver
from ._store import MemoryStore, Store, TieredStore
from ._trusted import Trusted
from ._types import Clock

# Keyword arguments of `from_env` that are `Issuer` fields (none is a `ResourceServer` argument).
ISSUER_FIELDS = frozenset(field.name for field in dataclasses.fields(Issuer))


@dataclass(frozen=True, slots=True)
class Parts:
    """What a server verifies with: `trusted` issuers by `iss`; `introspector` for opaque
    tokens, `revoker` to confirm verified JWTs (`introspect_jwts`), `foreign` for JWTs of other
    issuers (`introspect_foreign_jwts`); the shared `store` (None: each cache its own); the
    role resolvers by issuer, and the introspected tokens' one."""

    trusted: dict[str, Trusted]
    introspector: Introspector | None
    revoker: Introspector | None
    foreign: Introspector | None
    store: Store | None
    roles: dict[str, RoleResolver]
    introspection_roles: RoleResolver | None


def assemble(
    issuers: Issuer | Iterable[Issuer],
    introspection: Introspection | None,
    store: Store | None,
    events: Events,
    timer: Clock = time.monotonic,
) -> Parts:
    """The parts of a server, every argument checked (a `ConfigurationError` names it)."""
    configs = [issuers] if isinstance(issuers, Issuer) else _issuers(issuers)
    if not configs and introspection is None:
        raise ConfigurationError("at least one issuer, or introspection, is required")
    trusted: dict[str, Trusted] = {}
    for config in configs:
        if config.issuer in trusted:
            raise ConfigurationError(f"issuer {config.issuer} is configured twice")
        trusted[config.issuer] = Trusted.compile(config, events)
    if store is not None and not isinstance(store, Store):
        raise ConfigurationError("store must be a Store (MemoryStore, RedisStore...)")
    if store is not None and not isinstance(store, MemoryStore | TieredStore):
        store = TieredStore(MemoryStore(timer=timer), store)  # a shared store: hits stay local
    introspector = revoker = foreign = None
    if introspection is not None:
        introspector = _introspector(introspection, trusted, store, timer)
        if introspection.introspect_jwts:  # the same AS: the same bound on calls
            revoker = _introspector(
                introspection, trusted, store, timer, confirms=True, limit=introspector.limit
            )
        if introspection.introspect_foreign_jwts:
            foreign = introspector
    roles = {c.issuer: c.roles for c in configs if c.roles is not None}
    return Parts(
        trusted,
        introspector,
        revoker,
        foreign,
        store,
        roles,
        introspection.roles if introspection else None,
    )


def wire_roles(parts: Parts, http: HTTP, timer: Clock) -> None:
    """Give the role resolvers the server's HTTP clients and store (the first server's)."""
    for resolver in (*parts.roles.values(), parts.introspection_roles):
        if resolver:
            resolver.use_http(http)  # an HTTPRoleLookup runs on the server's clients
            # An empty MemoryStore is falsy (len 0): `is None`, not `or`.
            store = parts.store
            resolver.use_store(
                MemoryStore(resolver.max_roles, timer=timer) if store is None else store
            )


def arguments_from_env(
    environ: Mapping[str, str], kwargs: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The issuers and keyword arguments of a server built by `from_env` (names checked)."""
    fields = {name: kwargs.pop(name) for name in list(kwargs) if name in ISSUER_FIELDS}
    if "introspection" not in kwargs:
        kwargs["introspection"] = introspection_from_env(environ)
    if "store" not in kwargs:
        kwargs["store"] = store_from_env(environ)
    if "issuers" in kwargs:
        if fields:
            raise ConfigurationError(
                f"{', '.join(sorted(fields))}: Issuer fields go to the environment's "
                "issuer; with issuers=[...] set them on those Issuers"
            )
        issuers = kwargs.pop("issuers")
    else:
        optional = kwargs["introspection"] is not None
        issuers = issuers_from_env(environ, optional=optional, overrides=fields)
    return issuers, server_options_from_env(environ) | kwargs


def _issuers(issuers: object) -> list[Issuer]:
    # An issuer URL given where an `Issuer` is meant would otherwise be iterated by character.
    if isinstance(issuers, Iterable) and not isinstance(issuers, str | bytes | bytearray):
        configs = list(issuers)
        if all(isinstance(config, Issuer) for config in configs):
            return configs
    raise ConfigurationError(
        "issuers must be an Issuer or a list of Issuers (Issuer(issuer=..., audience=...))",
        field="issuers",
    )


def _introspector(
    config: Introspection,
    trusted: Mapping[str, Trusted],
    store: Store | None,
    timer: Clock,
    *,
    confirms: bool = False,
    limit: CallLimit | None = None,
) -> Introspector:
    # An issuer configured for JWTs too has discovered its metadata already: reuse it.
    known = trusted.get(config.issuer) if config.issuer else None
    keys = known.keys if known else None
    metadata = (lambda: keys.metadata) if keys else None
    return Introspector(
        config, metadata=metadata, confirms_jwts=confirms, limit=limit, timer=timer, store=store
    )
