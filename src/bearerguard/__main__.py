"""`bearerguard` command line (also `python -m bearerguard`): `demo` and `check`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

CHECK_HELP = """\
Explain why a resource server accepts or refuses an access token: every check in the
server's order, the first failure, and its RFC 6750 answer. Configuration comes from the
BEARERGUARD_* variables that ResourceServer.from_env() reads; flags override them (lists are
separated by commas or spaces, as in the variables). A shared secret for HS* is read only from
BEARERGUARD_SHARED_SECRET, never from a flag. With BEARERGUARD_INTROSPECTION_* set, a token the
server would introspect is introspected. A pasted 'Bearer <token>' is accepted. Progress goes to
stderr. Exit codes: 0 valid, 1 refused, 2 could not check (issuer unreachable, discovery failed,
bad arguments or configuration)."""

DEMO_HELP = """\
Start a local authorization server and a Starlette API protected by bearerguard on free ports
of 127.0.0.1, then play a client that gets tokens with client credentials and calls the API:
each step prints what was sent, what came back and why. Exit codes: 0 every step behaved,
1 a step did not, 2 the demo could not start (Starlette or uvicorn missing)."""


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{value!r} is not a non-negative number of seconds")
    return seconds


def _check_arguments(check: argparse.ArgumentParser) -> None:
    check.add_argument(
        "token",
        nargs="?",
        help=(
            "the access token; '-' or nothing reads it from stdin (when stdin is not a terminal);"
            " one that starts with '-' goes after '--'"
        ),
    )
    check.add_argument(
        "--issuer", metavar="URL", help="the issuer exactly as in iss, or its metadata URL"
    )
    check.add_argument("--jwks-uri", metavar="URL", help="the JWKS URL (skips discovery)")
    check.add_argument("--audience", action="append", metavar="AUD", help="repeatable")
    check.add_argument("--algorithms", metavar="ALGS", help="the allow-list, e.g. RS256,ES256")
    check.add_argument("--leeway", type=_seconds, metavar="SECONDS", help="clock skew allowed")
    check.add_argument("--max-token-age", type=_seconds, metavar="SECONDS")
    check.add_argument("--rfc9068", action=argparse.BooleanOptionalAction, default=None)
    check.add_argument("--scope-claim", action="append", metavar="CLAIM", help="repeatable")
    check.add_argument("--allow-http", action=argparse.BooleanOptionalAction, default=None)
    check.add_argument(
        "--require",
        action="append",
        metavar="SCOPE",
        help="scopes the route requires (repeatable, or space/comma separated): explains a 403",
    )
    check.add_argument("--json", action="store_true", help="print one JSON document")
    check.add_argument("--version", action="version", version=_version())


def _version() -> str:
    from . import __version__

    return f"bearerguard {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bearerguard", description="OAuth 2.0 resource-server tools."
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="a local issuer, a protected API and a scripted client, end to end on 127.0.0.1",
        description=DEMO_HELP,
    )
    demo.add_argument(
        "--serve", action="store_true", help="then keep both servers up, with curl lines to try"
    )
    demo.add_argument(
        "--fault",
        choices=["introspection", "jwks"],
        help="break the issuer on purpose, to see the demo catch it (exit 1)",
    )
    _check_arguments(
        commands.add_parser(
            "check", help="explain why a token is accepted or refused", description=CHECK_HELP
        )
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .cli._demo import run

        return run(sys.stdout, serve=args.serve, fault=args.fault)
    if args.command == "check":
        from .cli._check import run as check

        return check(
            args, environ=os.environ, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr
        )
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
