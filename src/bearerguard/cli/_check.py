"""`bearerguard check`: say why a resource server accepts or refuses one access token.

Configuration is `ResourceServer.from_env()`'s, with flags overriding the `BEARERGUARD_*`
variables. Prints every step of `_explain` as text or one JSON document, and exits 0 (valid),
1 (refused) or 2 (could not check: issuer unreachable, bad arguments or configuration). The token,
its signature and any shared secret are never printed; claims whose names suggest a credential are
redacted, and URLs are shown without userinfo or query (RFC 3986 §3.2.1).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import httpx

from .._env import INTROSPECTION_PREFIX, PREFIX, issuer_prefixes, server_options_from_env
from .._errors import ConfigurationError, InvalidTokenError
from .._fetch import DEFAULT_TIMEOUT
from .._jose import parse
from .._redact import safe_url
from .._server import ResourceServer
from ._check_output import json_document, print_text
from ._explain import explain
from ._logcapture import captured_log
from ._timefmt import short_duration

# Flag -> the variable it overrides, for every issuer the environment names.
_FLAGS = {
    "jwks_uri": "JWKS_URI",
    "audience": "AUDIENCE",
    "algorithms": "ALGORITHMS",
    "leeway": "LEEWAY",
    "max_token_age": "MAX_TOKEN_AGE",
    "rfc9068": "RFC9068",
    "scope_claim": "SCOPE_CLAIMS",
    "allow_http": "ALLOW_HTTP",
}
_OIDC, _OAUTH = "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"
_NO_ISSUER = "none given (pass --issuer)"
# A pasted header value or line: the scheme (and the header name) are not part of the token.
_PASTED = re.compile(r"(?:authorization\s*:\s*)?bearer\s+(\S+)", re.IGNORECASE)


class CheckError(Exception):
    """The check could not run: no token, no issuer, or a bad configuration (exit 2)."""


def run(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str],
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Run `bearerguard check` with parsed `args`; returns the exit code."""
    exchanges: list[dict[str, Any]] = []
    now = time.time()
    try:
        token, pasted = _read_token(args.token, stdin)
        env, issuer_given = _environment(args, environ, token)
        options = server_options_from_env(env)
        timeout = options.pop("timeout", None)
        with _Watched(timeout, exchanges, stderr) as client, captured_log() as lines:
            server = ResourceServer.from_env(env, http_client=client, clock=lambda: now)
            report = explain(
                server, token, now, issuer_given=issuer_given, required=_scopes(args.require)
            )
    except (CheckError, ConfigurationError) as exc:
        if args.json:
            stdout.write(json.dumps({"exit_code": 2, "error": str(exc)}, indent=2) + "\n")
        stderr.write(f"bearerguard check: {exc}\n")
        return 2
    if pasted:
        report.notes.insert(0, f"the pasted value began with {pasted!r}: checked what follows it")
    log = [f"{level.lower()}: {message}" for level, message in lines.take()]
    introspector = server.verifier.introspector
    introspection = introspector.config if introspector else None
    if args.json:
        document = json_document(report, server.issuers, introspection, exchanges, log)
        stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        print_text(report, server.issuers, introspection, exchanges, log, stdout)
    return report.exit_code


def _scopes(values: list[str] | None) -> list[str]:
    """`--require` values: repeatable, each a space- or comma-separated list."""
    return [scope for value in values or () for scope in re.split(r"[\s,]+", value) if scope]


def _read_token(argument: str | None, stdin: TextIO) -> tuple[str, str | None]:
    """The token, and the `Bearer ` (or `Authorization: Bearer `) prefix pasted with it."""
    if argument is None or argument == "-":
        if argument is None and stdin.isatty():
            raise CheckError("no token: pass it as an argument, or on stdin")
        argument = stdin.read()
    token, pasted = argument.strip(), None
    if match := _PASTED.fullmatch(token):
        pasted, token = token[: match.start(1)], match[1]
    if not token:
        raise CheckError("the token is empty")
    return token, pasted


def _environment(
    args: argparse.Namespace, environ: Mapping[str, str], token: str
) -> tuple[dict[str, str], bool]:
    """The `BEARERGUARD_*` variables with the flags written over them; was an issuer given?"""
    env = {name: value for name, value in environ.items() if name.startswith(PREFIX)}
    overrides: dict[str, str] = {}
    if args.issuer is not None:
        # The flag names the one issuer to check against: the named issuers' variables go too
        # (left behind, they would be reported as unknown).
        named = tuple(prefix for prefix in issuer_prefixes(env) if prefix != PREFIX)
        env = {name: value for name, value in env.items() if not name.startswith(named)}
        env.pop(PREFIX + "ISSUERS", None)
        overrides |= _issuer_flag(args.issuer, token)
    for flag, suffix in _FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            overrides[suffix] = _variable(value)
    prefixes = issuer_prefixes(env)
    for prefix in prefixes:
        env |= {prefix + suffix: value for suffix, value in overrides.items()}
    if prefixes != [PREFIX] or env.get(PREFIX + "ISSUER", "").strip():
        return env, True
    if not env.get(PREFIX + "JWKS_URI", "").strip():
        if any(name.startswith(INTROSPECTION_PREFIX) for name in env):
            return env, True  # introspection only: every token goes to the AS
        raise CheckError(
            "no issuer: pass --issuer URL or --jwks-uri URL, or set BEARERGUARD_ISSUER"
        )
    env[PREFIX + "ISSUER"] = _token_issuer(token) or _NO_ISSUER
    return env, False


def _variable(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


def _issuer_flag(url: str, token: str) -> dict[str, str]:
    """`--issuer` is the issuer, or its metadata URL (the inverse of `metadata_urls`)."""
    parts = urlsplit(url)
    if parts.path.endswith(_OIDC):
        issuer = urlunsplit(parts._replace(path=parts.path[: -len(_OIDC)], query=""))
    elif parts.path.startswith(_OAUTH):
        issuer = urlunsplit(parts._replace(path=parts.path[len(_OAUTH) :], query=""))
    else:
        return {"ISSUER": url}
    # "X" and "X/" share one metadata URL: take the one the token names, if it is either.
    iss = _token_issuer(token)
    return {"ISSUER": iss if iss and iss.rstrip("/") == issuer else issuer, "DISCOVERY_URL": url}


def _token_issuer(token: str) -> str | None:
    try:
        iss = parse(token).claims.get("iss")
    except InvalidTokenError:
        return None
    return iss if isinstance(iss, str) and iss else None


class _Watched(httpx.Client):
    """A client that says on `progress` (stderr) what it fetches, before it waits, and how each
    fetch ended (a timeout as soon as it happens), and records each exchange for the report."""

    def __init__(
        self, timeout: float | None, exchanges: list[dict[str, Any]], progress: TextIO
    ) -> None:
        self._timeout = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout)
        super().__init__(timeout=self._timeout)
        self._exchanges, self._progress = exchanges, progress

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        url = safe_url(str(request.url))  # never userinfo or query: they may hold secrets
        limit = self._timeout.read or self._timeout.connect
        waits = f" (timeout {short_duration(limit)})" if limit else ""
        self._say(f"bearerguard check: {request.method} {url}{waits} ...")
        exchange: dict[str, Any] = {"method": request.method, "url": url, "status": None}
        self._exchanges.append(exchange)
        started = time.monotonic()
        try:
            response = super().send(request, **kwargs)
        except httpx.HTTPError as exc:
            exchange["error"] = type(exc).__name__
            took = short_duration(time.monotonic() - started)
            self._say(f"bearerguard check:   no answer after {took}: {type(exc).__name__}")
            raise
        exchange["status"] = response.status_code
        self._say(f"bearerguard check:   HTTP {response.status_code}")
        return response

    def _say(self, line: str) -> None:  # a line at a time, at once: never silent for long
        self._progress.write(line + "\n")
        self._progress.flush()
