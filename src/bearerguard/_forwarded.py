"""What forwarding headers say about the URL a client addressed (pure: `_proxy` decides whom to
believe): `X-Forwarded-Proto`, `-Host`, `-Port`, `-Prefix`, and RFC 7239 `Forwarded`.

Each proxy on the way appends its value; `hops` picks the one that many from the right (1: the
proxy the app talks to). A header with fewer values is not believed (the connection's view
stands); a value that cannot be part of a URL leaves no URL (`View.scheme` None).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

Header = Callable[[str], str | None]  # a request header's value by lower-case name, joined

SCHEMES = frozenset({"http", "https"})
# RFC 3986 §3.2.2 reg-name or IP literal, and an optional port: no "/", "?", "#", "@" or space.
AUTHORITY = re.compile(r"(?:[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[[0-9A-Za-z:.]+\])(?::[0-9]{0,5})?")
PREFIX = re.compile(r"(?:/[A-Za-z0-9\-._~%!$&'()*+,;=:@]*)*")
_PORT = re.compile(r"[0-9]{1,5}")
# RFC 7239 §4: forwarded-pair = token "=" value, value = token / quoted-string (RFC 9110 §5.6).
_PAIR = re.compile(
    r"[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)=([!#$%&'*+.^_`|~0-9A-Za-z-]+|\"(?:[^\"\\]|\\.)*\")[ \t]*"
)
X_FORWARDED = ("x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix")
MAX_HEADER_CHARS = 8192  # a forwarding header longer than this is not believed


class View(NamedTuple):
    """The request as the client made it: `scheme` None if a trusted proxy said something
    unusable about the URL (no URL then: a DPoP proof cannot match it)."""

    scheme: str | None
    host: str
    prefix: str
    certificate: str | None


def header_value(text: str | None) -> str | None:
    """A header's value, None when absent or empty (nginx sends an empty one: no certificate)."""
    if text is None:
        return None
    return text.strip() or None


def _hop(text: str | None, hops: int) -> str | None:
    """The value the proxy `hops` from the app appended to a comma-separated header, else None."""
    if text is None or len(text) > MAX_HEADER_CHARS:
        return None
    values = text.split(",")
    return values[-hops].strip() if len(values) >= hops else None


def x_forwarded(header: Header, hops: int, scheme: str, host: str, certificate: str | None) -> View:
    proto, forwarded_host, port, prefix = (_hop(header(name), hops) for name in X_FORWARDED)
    if proto is not None:
        scheme = proto.lower()
    if forwarded_host is not None:
        host = forwarded_host
    if port is not None:
        if not _PORT.fullmatch(port):
            return View(None, host, "", certificate)
        host = _without_port(host) + ":" + port
    prefix = (prefix or "").rstrip("/")
    if scheme not in SCHEMES or not AUTHORITY.fullmatch(host) or not PREFIX.fullmatch(prefix):
        return View(None, host, "", certificate)
    return View(scheme, host, prefix, certificate)


def _without_port(host: str) -> str:
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def forwarded(text: str | None, hops: int, scheme: str, host: str, certificate: str | None) -> View:
    """RFC 7239: the element the proxy `hops` from the app appended; its `proto` and `host`."""
    if text is None:
        return View(scheme, host, "", certificate)
    elements = _elements(text) if len(text) <= MAX_HEADER_CHARS else None
    if elements is None:
        return View(None, host, "", certificate)
    if len(elements) < hops:
        return View(scheme, host, "", certificate)
    pairs = elements[-hops]
    scheme, host = pairs.get("proto", scheme).lower(), pairs.get("host", host)
    if scheme not in SCHEMES or not AUTHORITY.fullmatch(host):
        return View(None, host, "", certificate)
    return View(scheme, host, "", certificate)


def _elements(text: str) -> list[dict[str, str]] | None:
    """The `Forwarded` header's elements (RFC 7239 §4), each its pairs with lower-case names;
    None if it does not follow the grammar or names a parameter twice in one element."""
    elements: list[dict[str, str]] = [{}]
    position, end = 0, len(text)
    while True:
        match = _PAIR.match(text, position)
        if match is None:
            return None
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name in elements[-1]:
            return None
        elements[-1][name] = value
        position = match.end()
        if position == end:
            return elements
        separator = text[position]
        position += 1
        if separator == ",":
            while position < end and text[position] in " \t":
                position += 1
            elements.append({})
        elif separator != ";":
            return None
