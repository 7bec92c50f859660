"""Authorization-server metadata: OIDC Discovery 1.0 §4 and RFC 8414 §3.

Both documents are tried in order; the first that answers with a JSON object whose `issuer` is
exactly the configured issuer wins (OIDC Discovery §4.3, RFC 8414 §3.3). A mismatch is never
accepted: it means a misconfiguration or an impersonation attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ._flow import Fetch, Fetched, Flow, describe
from ._logfields import upstream_fields
from ._redact import safe_url
from ._urls import secure_url

logger = logging.getLogger("bearerguard.discovery")


@dataclass(frozen=True, slots=True)
class Metadata:
    """The members of an AS metadata document that a resource server uses."""

    issuer: str
    jwks_uri: str | None
    introspection_endpoint: str | None
    token_endpoint: str | None
    document: dict[str, Any]


class DiscoveryError(Exception):
    """No metadata document could be had; the message is safe to log."""


def parse_metadata(document: dict[str, Any], issuer: str, *, allow_http: bool = False) -> Metadata:
    """Read a metadata document; `DiscoveryError` if its issuer or its URLs are not usable."""
    if document.get("issuer") != issuer:
        raise DiscoveryError("metadata names a different issuer")

    def url(name: str) -> str | None:
        value = document.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not secure_url(value, allow_http=allow_http):
            raise DiscoveryError(f"metadata member {name} is not an https URL")
        return value

    return Metadata(
        issuer=issuer,
        jwks_uri=url("jwks_uri"),
        introspection_endpoint=url("introspection_endpoint"),
        token_endpoint=url("token_endpoint"),
        document=document,
    )


def discovery_flow(
    issuer: str, urls: tuple[str, ...], *, allow_http: bool = False
) -> Flow[Metadata]:
    """Fetch the first usable metadata document among `urls`."""
    problems: list[str] = []
    for url in urls:
        outcome = yield Fetch(url)
        if isinstance(outcome, Fetched) and outcome.ok and outcome.document is not None:
            try:
                return parse_metadata(outcome.document, issuer, allow_http=allow_http)
            except DiscoveryError as exc:
                problems.append(f"{safe_url(url)}: {exc}")
                logger.error(
                    "discovery for issuer %s: %s: %s",
                    issuer,
                    safe_url(url),
                    exc,
                    extra=upstream_fields(
                        "discovery_failed", issuer=issuer, upstream=url, error=str(exc)
                    ),
                )
                continue
        problems.append(f"{safe_url(url)}: {describe(outcome)}")
    raise DiscoveryError("; ".join(problems))
