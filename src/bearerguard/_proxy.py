"""The request as the client made it, behind proxies: `TrustedProxies`, given to the `Guard`.

Behind a TLS-terminating proxy the app sees the proxy's connection: `http://` where the client
used `https://`, perhaps another host and port, a path without the prefix the proxy removed,
and no client certificate. Two things need the client's view: DPoP's `htu` (RFC 9449 §4.3, the
URL the proof was made for) and certificate binding (RFC 8705 §3, the certificate the client
presented to the proxy). What the proxy says about them is believed only when configured:

- `origin="https://api.example.com"`: the external scheme and authority (and a path prefix, if
  the proxy removes one), fixed by configuration: no header is read for the URL;
- `forwarded="x-forwarded"` (`X-Forwarded-Proto`, `-Host`, `-Port`, `-Prefix`) or `"forwarded"`
  (RFC 7239 `Forwarded`: `proto` and `host`), read only from a peer in `addresses`. Each proxy
  on the way appends its own value; the one `hops` from the right is believed (1: the proxy
  the app talks to), as Werkzeug's `ProxyFix` does, so values a client sent ahead of it are
  never believed. A header with fewer values than `hops` is ignored (the proxies did not all
  set it); a value that is not what the header allows (a scheme other than http and https, a
  host with a path in it...) makes the URL unusable: a DPoP proof then fails `DPOP_URL`;
- `certificate_header="x-forwarded-client-cert"`: the client certificate, read only from a peer
  in `addresses`: a PEM certificate, plain or URL-escaped (nginx's `$ssl_client_escaped_cert`),
  or an Envoy XFCC element (see `_thumbprint.client_thumbprint`). From a trusted peer it is the
  only source: the TLS connection's own client certificate is then the proxy's, not the client's.

A peer outside `addresses` is a client that reached the app directly: its headers are ignored
(logged once per guard, at WARNING, naming the header, never its value) and the connection's own
view is used. Everything here runs only when a token must be verified (a cache miss), never on
the header-only fast path.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ._errors import ConfigurationError
from ._forwarded import (
    AUTHORITY,
    PREFIX,
    SCHEMES,
    X_FORWARDED,
    Header,
    View,
    forwarded,
    header_value,
    x_forwarded,
)
from ._validate import strings

logger = logging.getLogger("bearerguard")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """Which proxies in front of the app are believed, and what they are believed about.

    Args:
        addresses: the peer addresses whose headers are believed: IP addresses and networks
            (`"10.0.0.0/8"`, `"127.0.0.1"`, `"::1"`), compared with the connection's peer
            (ASGI `scope["client"]`, WSGI `REMOTE_ADDR`); `"*"` believes any peer, for an app
            that only the proxy can reach (a Unix socket, a private network).
        forwarded: `"x-forwarded"`, `"forwarded"` (RFC 7239) or None: the headers the URL is
            read from.
        hops: how many proxies append to the forwarding headers (the value `hops` from the
            right is believed).
        certificate_header: the header a TLS-terminating proxy puts the client certificate in.
        origin: the external `scheme://host[:port][/prefix]`, fixed (instead of `forwarded`).
    """

    addresses: Iterable[str] = ()
    forwarded: Literal["x-forwarded", "forwarded"] | None = None
    hops: int = 1
    certificate_header: str | None = None
    origin: str | None = None
    _networks: tuple[Network, ...] = field(init=False, repr=False, compare=False)
    _any: bool = field(init=False, repr=False, compare=False)
    _origin: tuple[str, str, str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        addresses = strings(self.addresses, "addresses")
        networks = []
        for address in addresses:
            if address == "*":
                continue
            try:
                networks.append(ipaddress.ip_network(address.strip(), strict=False))
            except ValueError:
                raise ConfigurationError(
                    f"addresses: {address!r} is not an IP address or network", field="addresses"
                ) from None
        if self.forwarded not in (None, "x-forwarded", "forwarded"):
            raise ConfigurationError(
                'forwarded must be "x-forwarded", "forwarded" or None', field="forwarded"
            )
        if type(self.hops) is not int or not 1 <= self.hops <= 32:
            raise ConfigurationError("hops must be an integer from 1 to 32", field="hops")
        header = self.certificate_header
        if header is not None and not (
            isinstance(header, str) and re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", header)
        ):
            raise ConfigurationError(
                "certificate_header must be a header name", field="certificate_header"
            )
        if self.forwarded is not None and self.origin is not None:
            raise ConfigurationError(
                "origin fixes the URL: forwarded headers cannot be read too", field="origin"
            )
        reads_headers = self.forwarded is not None or header is not None
        if reads_headers != bool(addresses):
            raise ConfigurationError(
                "addresses name the peers whose forwarded or certificate_header values are "
                "believed: give both, or neither",
                field="addresses",
            )
        object.__setattr__(self, "addresses", addresses)
        object.__setattr__(self, "certificate_header", header.lower() if header else None)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_any", "*" in addresses)
        object.__setattr__(self, "_origin", None if self.origin is None else _origin(self.origin))

    def headers(self) -> tuple[str, ...]:
        """The lower-case names of the request headers read (from trusted peers)."""
        names: tuple[str, ...] = ()
        if self.forwarded == "x-forwarded":
            names = X_FORWARDED
        elif self.forwarded == "forwarded":
            names = ("forwarded",)
        return names + ((self.certificate_header,) if self.certificate_header else ())

    def trusts(self, peer: str | None) -> bool:
        """Is the connection's peer address one of `addresses`?"""
        if self._any:
            return True
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer.partition("%")[0])  # an IPv6 zone: no matter
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:  # ::ffff:10.0.0.1
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)


class ProxyReader:
    """A guard's `TrustedProxies` at work: `view` of one request (called on cache misses only),
    and the one warning about an untrusted peer's headers."""

    __slots__ = ("config", "names", "raw_names", "warned")

    def __init__(self, config: TrustedProxies) -> None:
        if not isinstance(config, TrustedProxies):
            raise ConfigurationError("proxies must be a TrustedProxies", field="proxies")
        self.config = config
        self.names = config.headers()
        self.raw_names = frozenset(name.encode("ascii") for name in self.names)  # ASGI's
        self.warned = False

    def view(self, peer: str | None, header: Header, own: View) -> View:
        """What the client addressed and presented: the connection's `own` view (its scheme,
        `Host`, TLS client certificate), or what a trusted `peer`'s headers say."""
        config = self.config
        scheme, host, _, certificate = own
        scheme = scheme or "http"
        if not config.trusts(peer):
            if not self.warned and any(header(name) is not None for name in self.names):
                self.warned = True  # once per guard: a flood of such requests logs nothing more
                logger.warning(
                    "forwarding headers from a peer not in TrustedProxies.addresses are "
                    "ignored (%s); logged once",
                    ", ".join(name for name in self.names if header(name) is not None),
                )
            if config._origin is not None:
                return View(*config._origin, certificate)
            return View(scheme, host, "", certificate)
        if config.certificate_header is not None:
            certificate = header_value(header(config.certificate_header))
        if config._origin is not None:
            return View(*config._origin, certificate)
        if config.forwarded == "x-forwarded":
            return x_forwarded(header, config.hops, scheme, host, certificate)
        if config.forwarded == "forwarded":
            return forwarded(header("forwarded"), config.hops, scheme, host, certificate)
        return View(scheme, host, "", certificate)


def _origin(origin: str) -> tuple[str, str, str]:
    scheme, sep, rest = origin.partition("://")
    authority, slash, path = rest.partition("/")
    prefix = (slash + path).rstrip("/")
    if (
        not isinstance(origin, str)
        or scheme.lower() not in SCHEMES
        or not sep
        or not AUTHORITY.fullmatch(authority)
        or not PREFIX.fullmatch(prefix)
    ):
        raise ConfigurationError(
            "origin must be an absolute http(s) URL: scheme://host[:port][/prefix], without "
            "userinfo, query or fragment",
            field="origin",
        )
    return scheme.lower(), authority, prefix
