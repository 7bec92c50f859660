"""RFC 9728 OAuth 2.0 Protected Resource Metadata: the document, its URLs, and declared scopes.

The document lives at `/.well-known/oauth-protected-resource` followed by the resource
identifier's path (RFC 9728 §3.1); challenges point to it with `resource_metadata` (§5.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ._errors import ConfigurationError
from ._scopes import Requirement

if TYPE_CHECKING:
    from ._dpop import DPoPPolicy

WELL_KNOWN = "/.well-known/oauth-protected-resource"

# The attribute every route helper sets on what it wraps, so that declared scopes can be found.
REQUIREMENT_ATTR = "__bearerguard_requirement__"
# Set on a security scheme whose FastAPI `Security(scheme, scopes=[...])` declares those scopes.
SCHEME_ATTR = "__bearerguard_scheme__"

ScopesSource = Iterable[str] | Callable[[], Iterable[str]]


@dataclass(frozen=True, slots=True)
class ProtectedResource:
    """The RFC 9728 metadata of one resource identifier (an absolute URL, no query or fragment)."""

    resource: str
    authorization_servers: tuple[str, ...]
    # With DPoP (RFC 9449), RFC 9728 §2 names the proof algorithms and whether DPoP is required.
    dpop: DPoPPolicy | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.resource)
        if (
            parts.scheme not in ("https", "http")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ConfigurationError("resource must be an absolute URL without query or fragment")

    @property
    def path(self) -> str:
        """Where the document is served: the well-known prefix, then the resource's path."""
        return WELL_KNOWN + urlsplit(self.resource).path.rstrip("/")

    @property
    def url(self) -> str:
        """The document's URL, for `resource_metadata` in challenges (RFC 9728 §5.1)."""
        return urlunsplit(urlsplit(self.resource)._replace(path=self.path))

    def paths(self) -> frozenset[str]:
        # The root form is answered too: some clients (MCP's among them) look there first.
        return frozenset({self.path, WELL_KNOWN})

    def document(self, scopes_supported: Iterable[str]) -> bytes:
        """The JSON document (RFC 9728 §2); only the header bearer method is supported."""
        members: dict[str, Any] = {
            "resource": self.resource,
            "authorization_servers": list(self.authorization_servers),
            "scopes_supported": sorted(set(scopes_supported)),
            "bearer_methods_supported": ["header"],
        }
        if self.dpop is not None:
            members |= dpop_members(self.dpop)
        return json.dumps(members).encode()


def dpop_members(dpop: DPoPPolicy) -> dict[str, Any]:
    """The RFC 9728 §2 members of a resource accepting DPoP (RFC 9449 §5.1 names the algs)."""
    return {
        "dpop_signing_alg_values_supported": list(dpop.algorithms),
        "dpop_bound_access_tokens_required": dpop.required,
    }


class Document:
    """The document served for one resource, built once per app object and then reused.

    Scopes given as a callable are the user's function: it is asked, and the document encoded,
    on every request. Otherwise the scopes are fixed: those given, or those declared on the
    app's routes (walked at its first request for the document) plus `declared`, the scopes a
    policy table names.
    """

    def __init__(
        self,
        resource: ProtectedResource,
        scopes_supported: ScopesSource | None = None,
        declared: Iterable[str] = (),
    ) -> None:
        self.resource = resource
        self._ask: Callable[[], Iterable[str]] | None = None
        self._given: frozenset[str] | None = None
        if callable(scopes_supported):
            self._ask = scopes_supported
        elif scopes_supported is not None:
            self._given = frozenset(scopes_supported)  # read once: it may be a generator
        self._declared = frozenset(declared)
        self._built: tuple[object, bytes] | None = None  # (app, document): one app per guard

    def for_app(self, app: object) -> bytes:
        if self._ask is not None:
            return self.resource.document(self._ask())
        built = self._built
        if built is None or built[0] is not app:
            scopes = self._given
            if scopes is None:
                scopes = self._declared | declared_scopes(app)
            built = self._built = (app, self.resource.document(scopes))
        return built[1]


def declared_scopes(app: object) -> set[str]:
    """Every scope named by a requirement that a route helper attached inside `app`.

    Walks, by duck typing, the shapes of Starlette and FastAPI routers (`routes`, `endpoint`,
    FastAPI's `dependant` tree), Flask's `view_functions`, Django's URL resolver
    (`url_patterns`, `callback`, `view_class`), Litestar's `route_handlers` and `guards`,
    endpoint and view classes, and middleware chains (`app`, and `__self__` of a bound
    `wsgi_app`); no framework is imported.
    """
    found: set[str] = set()
    seen: set[int] = set()
    todo: list[object] = [app]
    while todo:
        obj = todo.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        requirement = getattr(obj, REQUIREMENT_ATTR, None)
        if isinstance(requirement, Requirement):
            found |= requirement.scopes
        if getattr(getattr(obj, "call", None), SCHEME_ATTR, False):  # a FastAPI dependant
            for name in ("own_oauth_scopes", "security_scopes"):  # newer and older FastAPI
                found.update(s for s in getattr(obj, name, None) or () if isinstance(s, str))
        if isinstance(obj, type):  # an HTTPEndpoint: its methods are the endpoints
            todo.extend(value for value in vars(obj).values() if callable(value))
            found |= _required_scopes(getattr(obj, "required_scopes", None))  # DRF's HasScopes
            continue
        for name in ("app", "endpoint", "dependant", "call", "__self__", "callback", "view_class"):
            todo.append(getattr(obj, name, None))
        for name in ("routes", "dependencies", "url_patterns", "route_handlers", "guards"):
            todo.extend(_members(getattr(obj, name, None)))
        views = getattr(obj, "view_functions", None)
        if isinstance(views, Mapping):
            todo.extend(views.values())
    return found


def _required_scopes(declared: object) -> set[str]:
    """The scopes of a view's `required_scopes`: scopes, a `Requirement`, or those by method."""
    if isinstance(declared, Mapping):
        return set().union(*(_required_scopes(value) for value in declared.values()))
    if isinstance(declared, Requirement):
        return set(declared.scopes)
    if isinstance(declared, list | tuple | set | frozenset):
        return {scope for scope in declared if isinstance(scope, str)}
    return set()


def _members(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []
