"""What of a configured URL or a token's claims may reach a terminal, a log line or a ticket.

A URL's userinfo (RFC 3986 §3.2.1) and its query may carry credentials (`https://user:pass@idp/`,
`?api_key=…`), so they are never shown; scheme, host, port and path say which endpoint it is.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# A heuristic safety net: claims are the token holder's to read, but outputs get pasted into
# tickets, and some issuers put credentials in custom claims.
_SECRET_NAME = re.compile(r"secret|passw|pwd|credential|api_?key|private|(?:^|_)token$", re.I)


def safe_url(url: str) -> str:
    """`url` with its userinfo shown as `…@` and its query and fragment as `?…`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises if what stands for host:port is not one
    except ValueError:  # where a secret might sit in it is unknown: show none of it
        return "(a URL that cannot be parsed)"
    _, at, host = parts.netloc.rpartition("@")
    shown = urlunsplit((parts.scheme, "…@" + host if at else host, parts.path, "", ""))
    return shown + "?…" if parts.query or parts.fragment else shown


def redact_claims(value: Any) -> Any:
    """Decoded JSON with the values of credential-like member names replaced."""
    if isinstance(value, dict):
        return {
            name: "[redacted]" if _SECRET_NAME.search(name) else redact_claims(item)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [redact_claims(item) for item in value]
    return value


# -- untrusted values in log lines and stored refusals ------------------------------------------

LIMIT = 120  # characters of an untrusted value shown, issuer URLs included
_MORE = "…"


def clip(value: object) -> str | None:
    """An untrusted value as a structured field: a string cut to `LIMIT` characters with
    unprintable characters escaped, a number as text, any other JSON type as `<type>`."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value if len(value) <= LIMIT else value[:LIMIT] + _MORE
        return text if text.isprintable() else "".join(map(_printable, text))
    if isinstance(value, int | float):  # bool too: JSON true is not an issuer, but says so
        return repr(value)[:LIMIT]
    return f"<{type(value).__name__}>"


def shown(value: object) -> str:
    """An untrusted value inside a message: `repr` of the cut string, so quotes and control
    characters are escaped and the value cannot end its field or its line."""
    if isinstance(value, str):
        return repr(value if len(value) <= LIMIT else value[:LIMIT] + _MORE)
    return "None" if value is None else str(clip(value))


def _printable(char: str) -> str:
    return char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
