"""URL rules: which URLs may be fetched, where an issuer's metadata is, what path a router routes.

Keys, metadata and introspection answers are fetched over https only; plain http is allowed for
loopback hosts, or when the configuration allows it explicitly, since anyone on the path could
swap the keys (`secure_url`, and `check_url` where a configured URL is refused). An issuer's
metadata is at its OIDC and RFC 8414 well-known URLs (`metadata_urls`). What a configured URL may
show in a message or a log line is `_redact.safe_url`'s rule: it sits below the exceptions (they
redact the URL they carry), these rules above them (they raise).

The path a policy table judges must be the path the router will route, or an encoding trick
reaches a route the table meant to protect. Servers percent-decode the path before the app sees
it, so a decoded path that is not in normal form (RFC 3986 §5.2.4: `.` or `..` segments, `//`, a
NUL, or a `%2F` that decoded into a `/`) is refused with 400 rather than rewritten: a rewrite
would make the table and any layer that re-reads the raw path disagree (`normal_path`); a mounted
app's path is judged below its mount point (`route_path`), and WSGI's `PATH_INFO` as the text a
router matches (`wsgi_path`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from ._errors import ConfigurationError, InvalidRequestError, Reason
from ._redact import safe_url


def secure_url(url: str, *, allow_http: bool = False) -> bool:
    """May keys or metadata be fetched from `url`? https always; plain http only for loopback
    hosts or when allowed explicitly, since anyone on the path could swap the keys."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises if what stands for host:port is not one
    except ValueError:  # "https://[x", "https://h:x/", an NFKC delimiter in the host: no URL
        return False
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and (allow_http or _is_loopback(parts.hostname))


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metadata_urls(issuer: str) -> tuple[str, ...]:
    """The OIDC and RFC 8414 well-known URLs of an issuer, in the order they are tried."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    oidc = urlunsplit(parts._replace(path=f"{path}/.well-known/openid-configuration"))
    # RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
    oauth = urlunsplit(parts._replace(path=f"/.well-known/oauth-authorization-server{path}"))
    return (oidc, oauth)


def check_url(url: str | None, *, allow_http: bool, owner: str, field: str | None = None) -> None:
    """`ConfigurationError` unless `url` is https (or http to loopback, or allowed explicitly)."""
    if url is None or secure_url(url, allow_http=allow_http):
        return
    raise ConfigurationError(
        f"{owner}: {safe_url(url)!r} must be an https URL (plain http only for loopback "
        f"or with allow_http=True)",
        field=field,
    )


def normal_path(path: str, raw: bytes | str | None = None) -> str:
    """`path` if it is in normal form; `InvalidRequestError(Reason.PATH)` (400) if not.

    `raw` is the undecoded path when the server gives it (ASGI `raw_path`, WSGI `RAW_URI` or
    `REQUEST_URI`), to catch an encoded slash; a query in it is ignored.
    """
    if raw is not None:
        raw_text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        if "%2f" in raw_text.partition("?")[0].lower():
            raise InvalidRequestError(Reason.PATH)
    if not path.startswith("/") or "\x00" in path or "//" in path:
        raise InvalidRequestError(Reason.PATH)
    if "." in path and any(part in (".", "..") for part in path.split("/")):
        raise InvalidRequestError(Reason.PATH)
    return path


def route_path(path: str, root_path: str | None) -> str:
    """The ASGI path below `root_path` (where the app is mounted), as routers route it.

    A `Mount` (or a server's `--root-path`) keeps the whole path in `path` and the mount point
    in `root_path`; the router strips it, so a table (and the public paths) of a middleware in
    front of a mounted app judge the path below its mount point, as WSGI's `PATH_INFO` is.
    """
    if not root_path or not path.startswith(root_path):
        return path
    rest = path[len(root_path) :]
    if not rest:
        return "/"
    return rest if rest[0] == "/" else path


def in_normal_form(path: str) -> bool:
    """Is `path` in normal form (see `normal_path`)?"""
    try:
        normal_path(path)
    except InvalidRequestError:
        return False
    return True


def wsgi_path(path_info: str) -> str:
    """PEP 3333 `PATH_INFO` (bytes decoded as latin-1) as the text a router matches (UTF-8)."""
    try:
        return path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8, or not a valid WSGI string: no route can mean it
        raise InvalidRequestError(Reason.PATH) from None
