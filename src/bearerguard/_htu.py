"""The HTTP target URI a DPoP proof names (`htu`, RFC 9449 §4.2), in a form fit for comparing.

RFC 9449 §4.3 asks for syntax-based (RFC 3986 §6.2.2) and scheme-based (§6.2.3) normalisation
before `htu` is compared with the request's URL, both without query and fragment:

- scheme and host in lower case; in percent-encodings, upper-case hex digits, and the
  unreserved characters (ALPHA, DIGIT, "-", ".", "_", "~") decoded;
- dot segments removed from the path (RFC 3986 §5.2.4), an empty path made "/";
- the port dropped when it is the scheme's default (80 for http, 443 for https) or empty.

Anything that is not an absolute http or https URI (other schemes, userinfo, characters outside
RFC 3986, a broken percent-encoding, a port that is not a number up to 65535) normalises to None,
which matches nothing.
"""

from __future__ import annotations

import re

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789ABCDEFabcdef")
# RFC 3986 §3.3 path characters (pchar and "/") and §3.2.2 reg-name or IP-literal, with "%" for
# percent-encodings (checked one by one afterwards). No "@" in the host: userinfo in an http(s)
# URI is deprecated (RFC 9110 §4.2.4) and refused.
_PATH = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*")
_HOST = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[[0-9A-Za-z:.\-_~!$&'()*+,;=]+\]")


def strip_query(url: str) -> str:
    """`url` without its query and fragment."""
    for mark in "?#":
        end = url.find(mark)
        if end >= 0:
            url = url[:end]
    return url


def normalize_htu(url: str) -> str | None:
    """`url` without query and fragment, normalised (see the module docstring); None if it is
    not an absolute http(s) URI."""
    url = strip_query(url)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or not rest.isascii():
        return None
    authority, slash, path = rest.partition("/")
    if authority.startswith("["):
        host, bracket, port = authority.partition("]")
        host += bracket
        if port and not port.startswith(":"):
            return None
        port = port[1:]
    else:
        host, _, port = authority.partition(":")
    if port:
        if not (port.isdigit() and len(port) <= 5 and int(port) <= 65535):
            return None
        port = str(int(port))
    if port == _DEFAULT_PORTS[scheme]:
        port = ""
    path = "/" + path if slash else "/"
    if not _HOST.fullmatch(host) or not _PATH.fullmatch(path):
        return None
    normal_host, normal_path = _percent(host.lower()), _percent(path)
    if normal_host is None or normal_path is None:
        return None
    colon = ":" if port else ""
    return f"{scheme}://{normal_host}{colon}{port}{_without_dot_segments(normal_path)}"


def _percent(text: str) -> str | None:
    """Percent-encodings with upper-case hex, unreserved characters decoded; None if broken."""
    if "%" not in text:
        return text
    first, *rest = text.split("%")
    out = [first]
    for chunk in rest:
        if len(chunk) < 2 or chunk[0] not in _HEX or chunk[1] not in _HEX:
            return None
        char = chr(int(chunk[:2], 16))
        out.append((char if char in _UNRESERVED else "%" + chunk[:2].upper()) + chunk[2:])
    return "".join(out)


def _without_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path: "." and ".." segments resolved."""
    if "/." not in path:
        return path
    segments = path.split("/")[1:]
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    result = "/" + "/".join(out)
    if segments[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result
