"""Configuration from `BEARERGUARD_*` environment variables, for twelve-factor deployments.

One issuer:   BEARERGUARD_ISSUER, BEARERGUARD_AUDIENCE, and optionally the others below.
Several:      BEARERGUARD_ISSUERS="PROD DEMO", then BEARERGUARD_PROD_ISSUER,
              BEARERGUARD_PROD_AUDIENCE, and so on.
Lists are separated by commas or spaces. Every bad value is a `ConfigurationError` naming the
variable, raised at start-up. Nothing is read at import time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ._config import Issuer
from ._errors import ConfigurationError
from ._jwks import JWKSPolicy

T = TypeVar("T")
PREFIX = "BEARERGUARD_"
_NAME = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)*")
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})

# Variable suffix -> (Issuer field, parser). Documented in README "Configuration from the
# environment"; tests/core/test_env.py checks that the two agree.


def _list(value: str) -> tuple[str, ...]:
    return tuple(item for item in re.split(r"[,\s]+", value.strip()) if item)


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError("expected true or false")


def _float(value: str) -> float:
    result = float(value)
    if not result >= 0:  # also refuses NaN
        raise ValueError("expected a non-negative number of seconds")
    return result


ISSUER_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "ISSUER": ("issuer", str.strip),
    "AUDIENCE": ("audience", _list),
    "ALGORITHMS": ("algorithms", _list),
    "JWKS_URI": ("jwks_uri", str.strip),
    "DISCOVERY_URL": ("discovery_url", str.strip),
    "SHARED_SECRET": ("shared_secret", str),
    "LEEWAY": ("leeway", _float),
    "REQUIRED_CLAIMS": ("required_claims", _list),
    "RFC9068": ("rfc9068", _bool),
    "MAX_TOKEN_AGE": ("max_token_age", _float),
    "SCOPE_CLAIMS": ("scope_claims", _list),
    "ALLOW_HTTP": ("allow_http", _bool),
}
POLICY_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "JWKS_TTL": ("default_ttl", _float),
    "JWKS_MIN_TTL": ("min_ttl", _float),
    "JWKS_MAX_TTL": ("max_ttl", _float),
    "JWKS_MIN_REFETCH_INTERVAL": ("min_refetch_interval", _float),
    "JWKS_STALE_IF_ERROR": ("stale_if_error", _float),
}
SERVER_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "MAX_TOKEN_BYTES": ("max_token_bytes", int),
    "TOKEN_CACHE_SIZE": ("token_cache_size", int),
    "HTTP_TIMEOUT": ("timeout", _float),
}


def _read(
    environ: Mapping[str, str], prefix: str, table: dict[str, tuple[str, Callable[[str], T]]]
) -> dict[str, T]:
    values: dict[str, T] = {}
    for suffix, (name, parse) in table.items():
        variable = prefix + suffix
        raw = environ.get(variable)
        if raw is None or not raw.strip():
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{variable}: {exc}") from None
    return values


def issuers_from_env(environ: Mapping[str, str]) -> list[Issuer]:
    """The issuers described by the environment; at least one, or `ConfigurationError`."""
    return [_issuer(environ, prefix) for prefix in issuer_prefixes(environ)]


def issuer_prefixes(environ: Mapping[str, str]) -> list[str]:
    """The variable prefix of each issuer: `BEARERGUARD_`, or one per `BEARERGUARD_ISSUERS` name."""
    names = _list(environ.get(PREFIX + "ISSUERS", ""))
    for name in names:
        if not _NAME.fullmatch(name.upper()):
            raise ConfigurationError(f"{PREFIX}ISSUERS: {name!r} is not a valid name")
    return [f"{PREFIX}{name.upper()}_" for name in names] or [PREFIX]


def _issuer(environ: Mapping[str, str], prefix: str) -> Issuer:
    for required in ("ISSUER", "AUDIENCE"):
        if not environ.get(prefix + required, "").strip():
            raise ConfigurationError(f"{prefix}{required} is required")
    fields = _read(environ, prefix, ISSUER_VARIABLES)
    try:
        policy = JWKSPolicy(**_read(environ, prefix, POLICY_VARIABLES))
    except ValueError as exc:
        raise ConfigurationError(f"{prefix}JWKS_*: {exc}") from None
    try:
        return Issuer(**fields, jwks_policy=policy)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{prefix}*: {exc}") from None


def server_options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    return _read(environ, PREFIX, SERVER_VARIABLES)
