"""Framework settings (Flask's and Quart's `app.config`, Django's `settings`) as a `Guard`.

A setting may hold what its variable would (text) or the natural Python value: a list for a
list, a number, a bool, bytes for a shared secret. Each becomes the variable's text, so one
parser (`_env.py`) checks every value and names the key in its error.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Mapping
from typing import TypeVar

from ._env import PREFIX, _bool, _list, check_names
from ._errors import ConfigurationError
from ._guard import Guard
from ._policy import PolicyTable
from ._proxy import TrustedProxies
from ._server import ResourceServer

T = TypeVar("T")
# Settings of the request policy (and of reading the others), not of the server: the rest are
# the keys `from_env` reads.
GUARD_SETTINGS = frozenset(
    {
        "SERVER",
        "REALM",
        "RESOURCE",
        "PUBLIC_PATHS",
        "OPTIONAL",
        "SCOPES_SUPPORTED",
        "STRICT",
        "PROXIES",
    }
)


def guard_from_settings(
    settings: Mapping[str, object], *, source: str, policy: PolicyTable | None = None
) -> Guard:
    """The `Guard` that settings keyed without the `BEARERGUARD_` prefix describe.

    `SERVER` is a `ResourceServer` or the dotted path of one; without it the server is built
    from the other keys as `ResourceServer.from_env` builds it from variables, and a key that
    nothing reads is reported with the closest known one (a WARNING, or an error when `STRICT`
    is true). `REALM`, `RESOURCE`, `PUBLIC_PATHS`, `OPTIONAL`, `SCOPES_SUPPORTED` and `PROXIES`
    (a `TrustedProxies`) are the `Guard`'s, and so is `policy` (a table is code, not a setting).
    Errors name `source` and the key.
    """
    config = dict(settings)
    options = {key: config.pop(key) for key in GUARD_SETTINGS & config.keys()}

    def option(key: str, parse: Callable[[str], T]) -> T | None:
        if (value := options.get(key)) is None:
            return None
        try:
            return parse(config_text(PREFIX + key, value))
        except ValueError as exc:  # ConfigurationError too
            raise ConfigurationError(f"{source}: {key}: {exc}") from None

    variables = {PREFIX + key: config_text(PREFIX + key, value) for key, value in config.items()}
    check_names(variables, strict=option("STRICT", _bool) or False, source=f"{source} key")
    server = options.get("SERVER")
    if server is None:
        server = ResourceServer._from_variables(variables, {})
    elif variables:
        named = ", ".join(sorted(config))
        raise ConfigurationError(f"{source}: SERVER, or the server's settings ({named}), not both")
    elif isinstance(server, str):
        try:
            server = pkgutil.resolve_name(server)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigurationError(f"{source}: SERVER: cannot import {server!r}: {exc}") from None
    if not isinstance(server, ResourceServer):
        raise ConfigurationError(f"{source}: SERVER is not a ResourceServer")
    try:
        return Guard(
            server,
            realm=option("REALM", str.strip) or None,
            resource=option("RESOURCE", str.strip) or None,
            public_paths=option("PUBLIC_PATHS", _list) or (),
            optional=option("OPTIONAL", _bool) or False,
            scopes_supported=option("SCOPES_SUPPORTED", _list),
            policy=policy,
            proxies=_proxies(options.get("PROXIES")),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None


def _proxies(value: object) -> TrustedProxies | None:
    if value is None or isinstance(value, TrustedProxies):
        return value
    raise ConfigurationError(f"PROXIES must be a TrustedProxies, not {type(value).__name__}")


def config_text(key: str, value: object) -> str:
    """A setting's value as the text its `BEARERGUARD_*` variable would hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):  # a shared secret given as bytes, not its repr
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigurationError(f"{key}: bytes that are not UTF-8") from None
    if isinstance(value, list | tuple | set | frozenset):  # audiences, algorithms, claims
        return ",".join(config_text(key, item) for item in value)
    if isinstance(value, bool | int | float):
        return str(value)
    raise ConfigurationError(
        f"{key}: expected text, a number or a list, not {type(value).__name__}"
    )
