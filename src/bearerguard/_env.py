"""Configuration from `BEARERGUARD_*` environment variables, for twelve-factor deployments.

One issuer:   BEARERGUARD_ISSUER, BEARERGUARD_AUDIENCE, and optionally the others below.
Several:      BEARERGUARD_ISSUERS="PROD DEMO", then BEARERGUARD_PROD_ISSUER,
              BEARERGUARD_PROD_AUDIENCE, and so on.
Introspection (RFC 7662): BEARERGUARD_INTROSPECTION_CLIENT_ID, _CLIENT_SECRET (or
              _AUTH_METHOD=private_key_jwt and _PRIVATE_KEY_FILE), and an _ENDPOINT or an
              _ISSUER; with it, BEARERGUARD_ISSUER may be left out.
A shared store (Redis): BEARERGUARD_REDIS_URL and BEARERGUARD_REDIS_SECRET, together.
Lists are separated by commas or spaces. Every bad value is a `ConfigurationError` naming the
variable, raised at start-up. A `BEARERGUARD_*` name that nothing reads (a typo) is reported with
the closest known name: a WARNING, or an error when strict. Nothing is read at import time.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._config import Issuer, JWKSPolicy
from ._config_introspection import Introspection
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._store import Store

T = TypeVar("T")
PREFIX = "BEARERGUARD_"
logger = logging.getLogger("bearerguard")
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
_SUFFIX_OF_FIELD = {name: suffix for suffix, (name, _) in ISSUER_VARIABLES.items()}


def _count(value: str) -> int:
    result = int(value)
    if result < 0:
        raise ValueError("expected a non-negative whole number")
    return result


def _pem_file(path: str) -> bytes:
    # A file, not the PEM itself: variable values leak (/proc/*/environ, `docker inspect`, child
    # processes, crash reports), while secret stores mount files.
    try:
        with open(path.strip(), "rb") as file:
            return file.read()
    except OSError as exc:
        raise ValueError(f"cannot read {path.strip()!r}: {exc.strerror}") from None


INTROSPECTION_PREFIX = PREFIX + "INTROSPECTION_"
INTROSPECTION_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "ENDPOINT": ("endpoint", str.strip),
    "ISSUER": ("issuer", str.strip),
    "CLIENT_ID": ("client_id", str.strip),
    "CLIENT_SECRET": ("client_secret", str),
    "AUTH_METHOD": ("auth_method", str.strip),
    "PRIVATE_KEY_FILE": ("private_key", _pem_file),
    "PRIVATE_KEY_ALG": ("private_key_alg", str.strip),
    "PRIVATE_KEY_KID": ("private_key_kid", str.strip),
    "PRIVATE_KEY_AUDIENCE": ("private_key_audience", str.strip),
    "AUDIENCE": ("audience", _list),
    "SCOPE_CLAIMS": ("scope_claims", _list),
    "LEEWAY": ("leeway", _float),
    "CACHE_MAX_TTL": ("cache_max_ttl", _float),
    "NEGATIVE_TTL": ("negative_ttl", _float),
    "CACHE_SIZE": ("cache_size", _count),
    "MAX_CONCURRENT_CALLS": ("max_concurrent_calls", _count),
    "MAX_CALLS_PER_SECOND": ("max_calls_per_second", float),
    "INTROSPECT_JWTS": ("introspect_jwts", _bool),
    "INTROSPECT_FOREIGN_JWTS": ("introspect_foreign_jwts", _bool),
    "ALLOW_HTTP": ("allow_http", _bool),
}
_INTROSPECTION_SUFFIX_OF_FIELD = {
    name: suffix for suffix, (name, _) in INTROSPECTION_VARIABLES.items()
}
SERVER_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "MAX_TOKEN_BYTES": ("max_token_bytes", _count),
    "TOKEN_CACHE_SIZE": ("token_cache_size", _count),
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


# BEARERGUARD_* names that other tools read, not configuration: never reported as typos (tox
# passes every BEARERGUARD_* variable to the test suite, which reads this one).
NOT_CONFIGURATION = frozenset({PREFIX + "SKIP_INTEROP"})


def check_names(
    environ: Mapping[str, str],
    *,
    strict: bool = False,
    extra: Iterable[str] = (),
    source: str = "environment variable",
) -> None:
    """Report each `BEARERGUARD_*` name in `environ` that no setting reads, with the closest
    known name: a WARNING each, or one `ConfigurationError` naming them all when `strict`.

    `extra` are further names the caller reads (the Flask extension's). Values are never shown.
    """
    known = {*NOT_CONFIGURATION, *extra, PREFIX + "ISSUERS"}
    tables = [*ISSUER_VARIABLES, *POLICY_VARIABLES]
    for prefix in {PREFIX, *issuer_prefixes(environ)}:
        known.update(prefix + suffix for suffix in tables)
    known.update(PREFIX + suffix for suffix in SERVER_VARIABLES)
    known.update(STORE_VARIABLES)
    known.update(INTROSPECTION_PREFIX + suffix for suffix in INTROSPECTION_VARIABLES)
    unknown = sorted(name for name in environ if name.startswith(PREFIX) and name not in known)
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        problems.append(f"{name}" + (f" (did you mean {close[0]}?)" if close else ""))
    if problems and strict:
        raise ConfigurationError(f"unknown {source}s: {', '.join(problems)}")
    for problem in problems:
        logger.warning("unknown %s %s: it is not read", source, problem)


def issuers_from_env(
    environ: Mapping[str, str],
    *,
    optional: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> list[Issuer]:
    """The issuers described by the environment; at least one unless `optional`.

    `overrides` are `Issuer` fields given as keyword arguments: they replace the environment's
    values of its one issuer (with several, they could not say which: an error).
    """
    overrides = overrides or {}
    prefixes = issuer_prefixes(environ)
    if prefixes != [PREFIX] and overrides:
        raise ConfigurationError(
            f"{', '.join(sorted(overrides))}: Issuer fields as keyword arguments need one "
            f"issuer, and {PREFIX}ISSUERS names several: set {PREFIX}<NAME>_* variables, "
            "or build the Issuers and pass issuers=[...]"
        )
    if optional and not overrides and not environ.get(PREFIX + "ISSUER", "").strip():
        return []
    issuers = [_issuer(environ, prefix, overrides) for prefix in prefixes]
    if prefixes != [PREFIX]:
        _check_unprefixed(environ)
    return issuers


def _check_unprefixed(environ: Mapping[str, str]) -> None:
    # With BEARERGUARD_ISSUERS, BEARERGUARD_ISSUER, BEARERGUARD_AUDIENCE... are not read: each
    # issuer's are BEARERGUARD_<NAME>_*. Ignoring them would drop a setting without a word.
    for suffix in (*ISSUER_VARIABLES, *POLICY_VARIABLES):
        if environ.get(PREFIX + suffix, "").strip():
            raise ConfigurationError(
                f"{PREFIX}{suffix} is not read when {PREFIX}ISSUERS is set: each issuer's "
                f"variables are {PREFIX}<NAME>_{suffix}"
            )


def issuer_prefixes(environ: Mapping[str, str]) -> list[str]:
    """The variable prefix of each issuer: `BEARERGUARD_`, or one per `BEARERGUARD_ISSUERS` name."""
    names = _list(environ.get(PREFIX + "ISSUERS", ""))
    for name in names:
        # INTROSPECTION_ would read the introspection variables as an issuer's.
        if not _NAME.fullmatch(name.upper()) or name.upper() == "INTROSPECTION":
            raise ConfigurationError(f"{PREFIX}ISSUERS: {name!r} is not a valid name")
    return [f"{PREFIX}{name.upper()}_" for name in names] or [PREFIX]


def _issuer(environ: Mapping[str, str], prefix: str, overrides: Mapping[str, Any]) -> Issuer:
    for required in ("ISSUER", "AUDIENCE"):
        name = ISSUER_VARIABLES[required][0]
        if name not in overrides and not environ.get(prefix + required, "").strip():
            raise ConfigurationError(f"{prefix}{required} is required")
    fields = _read(environ, prefix, ISSUER_VARIABLES)
    timings = _read(environ, prefix, POLICY_VARIABLES)
    try:
        policy = JWKSPolicy(**timings)
    except ValueError as exc:
        named = "/".join(prefix + s for s, (n, _) in POLICY_VARIABLES.items() if n in timings)
        raise ConfigurationError(f"{named}: {exc}") from None
    try:
        return Issuer(**({"jwks_policy": policy} | fields | dict(overrides)))
    except ConfigurationError as exc:
        if exc.field in overrides:
            raise  # its message names the keyword argument
        suffix = _SUFFIX_OF_FIELD.get(exc.field or "", "ISSUER")
        raise ConfigurationError(f"{prefix}{suffix}: {exc}", field=exc.field) from None


def server_options_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    return _read(environ, PREFIX, SERVER_VARIABLES)


REDIS_URL, REDIS_SECRET = PREFIX + "REDIS_URL", PREFIX + "REDIS_SECRET"
STORE_VARIABLES = (REDIS_URL, REDIS_SECRET)


def store_from_env(environ: Mapping[str, str]) -> Store | None:
    """The shared store the environment names (a `RedisStore`), or None for the in-memory one.

    The secret is required with the URL: Redis key names and value tags are HMACs with it, so
    that whoever can read or write that Redis can neither tell which token an entry is about
    nor plant an answer the servers would believe (see `bearerguard.redis`).
    """
    url, secret = environ.get(REDIS_URL, "").strip(), environ.get(REDIS_SECRET, "")
    if not url:
        if secret.strip():
            raise ConfigurationError(f"{REDIS_SECRET} is set but {REDIS_URL} is not")
        return None
    if not secret.strip():
        raise ConfigurationError(
            f"{REDIS_SECRET} is required with {REDIS_URL}: Redis key names and value tags are "
            "HMACs with it (at least 16 bytes, the same on every replica)"
        )
    from .redis import RedisStore  # noqa: PLC0415 - needs the redis extra: only when configured

    try:
        return RedisStore(url, secret=secret)
    except ConfigurationError as exc:
        variable = REDIS_SECRET if exc.field == "redis_secret" else REDIS_URL
        raise ConfigurationError(f"{variable}: {exc}", field=exc.field) from None


def introspection_from_env(environ: Mapping[str, str]) -> Introspection | None:
    """The introspection client described by the environment, or None if there is none."""
    fields = _read(environ, INTROSPECTION_PREFIX, INTROSPECTION_VARIABLES)
    if not fields:
        return None
    if "client_id" not in fields:
        raise ConfigurationError(f"{INTROSPECTION_PREFIX}CLIENT_ID is required")
    try:
        return Introspection(**fields)
    except ConfigurationError as exc:
        suffix = _INTROSPECTION_SUFFIX_OF_FIELD.get(exc.field or "", "*")
        raise ConfigurationError(
            f"{INTROSPECTION_PREFIX}{suffix}: {exc}", field=exc.field
        ) from None
