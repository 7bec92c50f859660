"""`bearerguard` command line: `bearerguard demo` (also `python -m bearerguard demo`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bearerguard", description="OAuth 2.0 resource-server tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="verify tokens from an embedded local issuer, end to end")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        return run(sys.stdout)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
