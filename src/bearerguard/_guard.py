"""What every adapter does around `ResourceServer`, written once: request pre-checks (RFC 6750 §2),
optional authentication, route requirements, and rendering refusals (RFC 6750 §3, RFC 9728 §5.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypedDict, cast
from urllib.parse import parse_qsl

from ._challenge import Challenge, Refused, render_refusal
from ._credentials import NO_CONTEXT, Adapter, Credentials, RequestContext, S
from ._dpoproutes import at_route, check_declared, check_route
from ._errors import (
    BearerError,
    ConfigurationError,
    InvalidRequestError,
    MissingTokenError,
    Reason,
    Seen,
    UpstreamUnavailableError,
    in_dpop_scheme,
)
from ._events import TokenRefused
from ._metadata import Document, ProtectedResource, ScopesSource
from ._policy import PolicyTable
from ._proxy import ProxyReader, TrustedProxies
from ._scopes import Requirement, is_dpop_bound
from ._token import AccessToken
from ._urls import in_normal_form, normal_path, wsgi_path
from ._validate import strings

if TYPE_CHECKING:  # adapters take a server; they need not load it
    from ._server import ResourceServer

# Where adapters store the request's AccessToken (or None): the ASGI scope or the WSGI environ.
SCOPE_KEY = "bearerguard.token"
# Where the ASGI middleware leaves its Guard, so route helpers render refusals the same way.
GUARD_KEY = "bearerguard.guard"


class GuardOptions(TypedDict, total=False):
    """The keyword arguments of `Guard`, which the middlewares take too."""

    realm: str | None
    resource: str | None
    public_paths: Iterable[str]
    optional: bool
    scopes_supported: ScopesSource | None
    policy: PolicyTable | None
    proxies: TrustedProxies | None


class Guard:
    """The request-level policy shared by the middlewares and the framework helpers.

    Args:
        realm: the `realm` of every challenge.
        resource: this API's resource identifier (an absolute URL); enables the RFC 9728
            document and `resource_metadata` in challenges.
        public_paths: paths served without authentication, each matching itself and what lies
            below it (`"/docs"` covers `/docs/oauth2-redirect`, not `/docsets`).
        optional: let requests without credentials through with no token; a token that is
            sent is still verified and refused if invalid.
        scopes_supported: the RFC 9728 `scopes_supported`, or a callable asked on every
            request; by default gathered from the requirements declared on the app's routes
            (once: the document is built at its first request and reused).
        policy: a `PolicyTable` the middleware enforces before the app runs; with one,
            request paths not in normal form are refused with 400 (public paths included).
        proxies: `TrustedProxies`: the URL and client certificate behind proxies.
    """

    def __init__(
        self,
        server: ResourceServer,
        *,
        realm: str | None = None,
        resource: str | None = None,
        public_paths: Iterable[str] = (),
        optional: bool = False,
        scopes_supported: ScopesSource | None = None,
        policy: PolicyTable | None = None,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.server = server
        self.policy = policy
        self.proxies = None if proxies is None else ProxyReader(proxies)
        if policy is not None and policy.names_dpop:
            check_declared(server.dpop, "policy")
        if realm is not None and not (
            isinstance(realm, str) and realm.isascii() and realm.isprintable()
        ):
            # It goes into a header.
            raise ConfigurationError("realm must be printable ASCII", field="realm")
        self.realm = realm
        self.optional = optional
        # A bare "/health" would be its characters, "/" among them: everything public.
        paths = strings(public_paths, "public_paths")
        if not all(path.startswith("/") for path in paths):
            raise ConfigurationError("public_paths must start with '/'", field="public_paths")
        self.public_paths = tuple(path.rstrip("/") or "/" for path in paths)
        if scopes_supported is not None and not callable(scopes_supported):
            scopes_supported = strings(scopes_supported, "scopes_supported")
        self.metadata = None
        self.document = None
        if resource is not None:
            issuers = tuple(issuer.issuer for issuer in server.issuers)
            self.metadata = ProtectedResource(resource, issuers, server.dpop)
            declared = policy.scopes if policy is not None else ()  # fixed at construction
            self.document = Document(self.metadata, scopes_supported, declared)
        self.metadata_paths = self.metadata.paths() if self.metadata else frozenset()
        # RFC 9728 §5.1: every challenge names the document; computed once, not per refusal.
        self.metadata_url = self.metadata.url if self.metadata else None

    def is_public(self, path: str) -> bool:
        """Is `path` one of the public paths or below one? Only a path in normal form counts:
        `/health/../admin` is below `/health` as text, not as a router may read it, so it must
        authenticate like any other path (with a policy table it is refused earlier, 400)."""
        # A loop, not any(): no generator is built on every request.
        for p in self.public_paths:
            if path == p or path.startswith(p + "/") or p == "/":
                return in_normal_form(path)
        return False

    def metadata_document(self, app: object) -> bytes:
        """The RFC 9728 document served for `app`, built at its first request (see `Document`)."""
        if self.document is None:
            raise RuntimeError("no resource= was configured")
        return self.document.for_app(app)

    def check_path(self, path: str, raw: bytes | str | None, *, wsgi: bool = False) -> str:
        """The path the policy judges; 400 for one it cannot judge as the router will."""
        try:
            return normal_path(wsgi_path(path) if wsgi else path, raw)
        except InvalidRequestError as exc:
            self.log(exc)
            raise

    def enforce(self, method: str, path: str, token: AccessToken | None) -> None:
        """The policy table's requirement for the request, if it covers the path."""
        requirement = self.policy.requirement_for(method, path) if self.policy else None
        if requirement is not None:
            self.check(requirement, token)

    def authorization(self, values: Sequence[str], query: str) -> str | None:
        """The Authorization value to verify, from the header's field lines and the query string.

        Repeated field lines are joined as RFC 9110 §5.3 says, so two credentials are refused
        as `invalid_request` by the header parser on every path (WSGI servers join them too).
        """
        if "access_token" in query and any(
            name == "access_token" for name, _ in parse_qsl(query, keep_blank_values=True)
        ):
            # RFC 6750 §2.3 allows, and §5.3 advises against, a token in the URL: it ends up in
            # logs and Referer headers. It is refused, alone or beside a header (§2: one method).
            self.log(InvalidRequestError(Reason.TOKEN_IN_URL))
            raise InvalidRequestError(Reason.TOKEN_IN_URL)
        return ", ".join(values) if values else None

    def credentials(
        self, values: Sequence[str], query: str, context: RequestContext = NO_CONTEXT
    ) -> Credentials:
        """The request's `Credentials`: its Authorization lines, query string and the rest of
        what its adapter read. A refusal (no token, a malformed header) is reported here."""
        authorization = self.authorization(values, query)  # reports a token in the URL itself
        try:
            return self.server._read(authorization, context)
        except BearerError as exc:
            self.log(exc)
            raise

    def authenticate(
        self,
        values: Sequence[str],
        query: str,
        *,
        optional: bool | None = None,
        context: RequestContext = NO_CONTEXT,
    ) -> AccessToken | None:
        """Verify the request's credentials (sync twin); None if optional and none were sent."""
        try:
            return self.server.verify_credentials(self.credentials(values, query, context))
        except MissingTokenError:
            if self.optional if optional is None else optional:
                return None
            raise

    def cached(self, values: Sequence[str], query: str) -> AccessToken | None:
        """The request's token if it is a verified-token cache hit needing nothing more, else
        None (then `aauthenticate`): one header line, no token in the URL, no roles to resolve."""
        if len(values) != 1 or "access_token" in query:
            return None
        return self.server._cached(values[0])

    async def aauthenticate(
        self,
        values: Sequence[str],
        query: str,
        *,
        optional: bool | None = None,
        context: RequestContext = NO_CONTEXT,
    ) -> AccessToken | None:
        """Verify the request's credentials (async twin)."""
        try:
            credentials = self.credentials(values, query, context)
            return await self.server.averify_credentials(credentials)
        except MissingTokenError:
            if self.optional if optional is None else optional:
                return None
            raise

    def admit(self, requirement: Requirement, store: S, adapter: Adapter[S]) -> AccessToken | None:
        """The request's token if it meets `requirement`, else `Refused` (sync twin).

        The token a middleware left in `store` (the environ or scope) is used when there is one;
        otherwise the credentials `adapter` reads from `store` are verified here. Every refusal
        is rendered by this guard.
        """
        try:
            if SCOPE_KEY in store:
                token = cast(AccessToken | None, store[SCOPE_KEY])
            else:
                values, query = adapter.credentials(store)
                token = self.cached(values, query) or self.authenticate(
                    values,
                    query,
                    optional=requirement.optional,
                    context=adapter.context(store, self.proxies),
                )
            self.check(requirement, token)
        except (BearerError, UpstreamUnavailableError) as exc:
            raise Refused(self.render(exc, requirement), exc.reason.value) from exc
        return token

    async def aadmit(
        self, requirement: Requirement, store: S, adapter: Adapter[S]
    ) -> AccessToken | None:
        """The request's token if it meets `requirement`, else `Refused` (async twin)."""
        try:
            if SCOPE_KEY in store:
                token = cast(AccessToken | None, store[SCOPE_KEY])
            else:
                values, query = adapter.credentials(store)
                # A hit needing nothing more is answered without awaiting (as the middleware
                # does): no coroutine is made for it.
                token = self.cached(values, query)
                if token is None:
                    token = await self.aauthenticate(
                        values,
                        query,
                        optional=requirement.optional,
                        context=adapter.context(store, self.proxies),
                    )
            self.check(requirement, token)
        except (BearerError, UpstreamUnavailableError) as exc:
            raise Refused(self.render(exc, requirement), exc.reason.value) from exc
        return token

    def check(self, requirement: Requirement, token: AccessToken | None) -> None:
        """`requirement.check(token)`, logging a scope refusal.

        A missing token is not logged again: the server logged it when it read the header.
        """
        try:
            if requirement.names_dpop:  # one attribute read for the others
                check_route(requirement, token, self.server.dpop)
            else:
                requirement.check(token)
        except BearerError as exc:
            if not isinstance(exc, MissingTokenError):
                self.log(exc, token)
                dpop = self.server.dpop
                if dpop is not None and token is not None and is_dpop_bound(token):
                    in_dpop_scheme(exc, dpop.algorithms)  # the request used DPoP: answered so
            raise

    def render(
        self, exc: BearerError | UpstreamUnavailableError, requirement: Requirement | None = None
    ) -> Challenge:
        """`exc` rendered; as the route of `requirement` answers it, if given (`at_route`)."""
        if requirement is not None:
            exc = at_route(exc, requirement, self.server)
        return render_refusal(exc, self.realm, self.metadata_url)

    def answer(
        self, exc: BearerError | UpstreamUnavailableError, token: AccessToken | None
    ) -> Challenge:
        """A refusal raised in a view (`Requirement.check(token)`), logged as `check` logs one
        (an upstream failure was logged where it happened), and rendered."""
        if isinstance(exc, BearerError) and not isinstance(exc, MissingTokenError):
            self.log(exc, token)
        return self.render(exc)

    def log(self, exc: BearerError, token: AccessToken | None = None) -> None:
        """Report a refusal judged here (the server reports those it judges) to its events."""
        events = self.server.events
        if events.refused:
            # Never the token: the verified issuer and client id, and what the route required.
            seen = Seen("token", token.issuer, None, None, token.client_id) if token else None
            events.emit(TokenRefused(exc, seen, tuple(getattr(exc, "required", ()))))
