"""Configuration of token introspection (RFC 7662): one frozen value, validated when it is built.

The endpoint is reached over https only (plain http for loopback or when allowed explicitly);
the resource server authenticates with one credential (a client secret, or a private key for
`private_key_jwt`), and calls are bounded so that a flood of unseen tokens cannot flood the
authorization server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from ._assertion import AUDIENCE_ENDPOINT, AUDIENCE_ISSUER, PrivateKey, signing_key
from ._errors import ConfigurationError
from ._frozen import CLIENT_ID_CLAIMS
from ._redact import safe_url
from ._scopes import DEFAULT_SCOPE_CLAIMS
from ._urls import check_url, metadata_urls
from ._validate import claim_names, seconds, strings

if TYPE_CHECKING:
    from ._roles import RoleResolver


AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
AUTH_METHODS: tuple[AuthMethod, ...] = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
)


MIN_CALLS_PER_SECOND = 1 / 3600  # the smallest bound on introspection calls: one an hour


@dataclass(frozen=True, slots=True, kw_only=True)
class Introspection:
    """How to ask the authorization server about tokens it alone can judge (RFC 7662).

    The endpoint is `endpoint`, or the `introspection_endpoint` of `issuer`'s metadata (RFC 8414
    §2). This resource server authenticates to it with its own `client_id` and `client_secret`,
    sent as HTTP Basic (`client_secret_basic`, the default) or in the form body
    (`client_secret_post`), never over plain http beyond loopback; or by a JWT signed with its
    `private_key` (`private_key_jwt`, RFC 7523 §2.2), then with no secret; the JWT's `aud` is
    `private_key_audience`: "endpoint" (the URL called), "issuer", or an explicit URL, or by
    default the issuer when configured, else the endpoint. `issuer` and
    `audience`, when set, must match the answer's `iss` and `aud` whenever the answer has them:
    many servers leave them out (RFC 7662 §2.2 makes every member but `active` optional).

    Positive answers are cached until the token's `exp`, and never longer than `cache_max_ttl`,
    the longest a revoked token can still be accepted; inactive ones for `negative_ttl`. An
    unreachable or broken endpoint is a 503, never a 401 and never an expired cached answer.
    Calls are bounded, `max_concurrent_calls` at once and `max_calls_per_second`: above that an
    unseen token gets a 503 with Retry-After, cached ones are still answered.

    A JWT is introspected only on request: `introspect_jwts` confirms JWTs of the configured
    issuers after they passed every local check (revocation); `introspect_foreign_jwts` asks
    about JWTs of other issuers, which are otherwise refused. Anything that is not a JWS is
    introspected.

    Example::

        Introspection(issuer="https://idp.example.com", client_id="orders-api",
                      client_secret=os.environ["ORDERS_API_SECRET"], audience="api://orders")
    """

    client_id: str
    client_secret: str | None = field(default=None, repr=False)  # required for client_secret_*
    endpoint: str | None = None
    issuer: str | None = None
    auth_method: AuthMethod = "client_secret_basic"
    # private_key_jwt: a cryptography private key or an unencrypted PEM, held as the key object
    private_key: PrivateKey | str | bytes | None = field(default=None, repr=False)
    private_key_alg: str = "RS256"
    private_key_kid: str | None = None
    private_key_audience: str | None = None  # "endpoint", "issuer" or a URL (Okta: the endpoint)
    audience: str | Sequence[str] | None = None
    scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS
    client_id_claims: Sequence[str] = CLIENT_ID_CLAIMS  # the answer's members naming the client
    leeway: float | timedelta = 30.0
    cache_max_ttl: float | timedelta = 60.0
    negative_ttl: float | timedelta = 10.0
    cache_size: int = 10_000
    max_concurrent_calls: int = 20  # calls to the AS at once; above: 503 with Retry-After
    max_calls_per_second: float = 50.0  # and a second (a bucket of one second's worth)
    introspect_jwts: bool = False  # also ask about JWTs of configured issuers (revocation)
    introspect_foreign_jwts: bool = False  # ask about JWTs of other issuers (else refused)
    allow_http: bool = False
    roles: RoleResolver | None = None  # role-ID scopes of introspected tokens (see RoleResolver)

    def __post_init__(self) -> None:
        owner = f"introspection at {safe_url(self.endpoint) if self.endpoint else self.issuer}"
        if self.endpoint is None and self.issuer is None:
            raise ConfigurationError(
                "introspection needs an endpoint or an issuer to discover", field="endpoint"
            )
        if self.auth_method not in AUTH_METHODS:
            raise ConfigurationError(
                f"{owner}: auth_method must be one of {AUTH_METHODS}", field="auth_method"
            )
        self._check_credentials(owner)
        self._check_assertion_audience(owner)
        if self.audience is not None:
            audience = strings(self.audience, "audience", owner=owner, one=True)
            if not audience:
                raise ConfigurationError(
                    f"{owner}: audience must be non-empty strings", field="audience"
                )
            object.__setattr__(self, "audience", audience)
        object.__setattr__(
            self, "scope_claims", strings(self.scope_claims, "scope_claims", owner=owner)
        )
        object.__setattr__(
            self, "client_id_claims", claim_names(self.client_id_claims, "client_id_claims", owner)
        )
        for name in ("leeway", "cache_max_ttl", "negative_ttl"):
            object.__setattr__(self, name, seconds(getattr(self, name), name))
        if isinstance(self.cache_size, bool) or self.cache_size < 0:
            raise ConfigurationError(f"{owner}: cache_size must be >= 0", field="cache_size")
        self._check_bounds(owner)
        check_url(self.endpoint, allow_http=self.allow_http, owner=owner, field="endpoint")
        if self.endpoint is None and self.issuer is not None:
            for url in metadata_urls(self.issuer):
                check_url(url, allow_http=self.allow_http, owner=owner, field="issuer")

    def _check_credentials(self, owner: str) -> None:
        # One credential per method (RFC 6749 §2.3: never more than one per request): a secret
        # configured beside a key would be a secret kept, and possibly leaked, for nothing.
        keyed = self.auth_method == "private_key_jwt"
        unwanted = "client_secret" if keyed else "private_key"
        if getattr(self, unwanted) is not None:
            raise ConfigurationError(
                f"{owner}: {unwanted} does not go with auth_method={self.auth_method!r}",
                field=unwanted,
            )
        required = {"client_id": True, "client_secret": not keyed, "private_key_kid": False}
        for name, needed in required.items():
            value = getattr(self, name)
            if (needed or value is not None) and not (isinstance(value, str) and value):
                raise ConfigurationError(f"{owner}: {name} must be a non-empty string", field=name)
        if keyed:
            key = signing_key(self.private_key, self.private_key_alg, owner)
            object.__setattr__(self, "private_key", key)

    def _check_bounds(self, owner: str) -> None:
        calls, rate = self.max_concurrent_calls, self.max_calls_per_second
        if not isinstance(calls, int) or isinstance(calls, bool) or calls < 1:
            raise ConfigurationError(
                f"{owner}: max_concurrent_calls must be a whole number >= 1",
                field="max_concurrent_calls",
            )
        # At least one call an hour: a rate near zero would make Retry-After overflow.
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not MIN_CALLS_PER_SECOND <= rate < math.inf
        ):
            raise ConfigurationError(
                f"{owner}: max_calls_per_second must be a finite number >= 1/3600",
                field="max_calls_per_second",
            )
        object.__setattr__(self, "max_calls_per_second", float(rate))

    def _check_assertion_audience(self, owner: str) -> None:
        name, value = "private_key_audience", self.private_key_audience
        if value is None:
            return
        if self.auth_method != "private_key_jwt":
            raise ConfigurationError(
                f"{owner}: {name} goes only with auth_method='private_key_jwt'", field=name
            )
        if not isinstance(value, str):
            raise ConfigurationError(f"{owner}: {name} must be a string", field=name)
        if value == AUDIENCE_ISSUER and self.issuer is None:
            raise ConfigurationError(f"{owner}: {name}='issuer' needs an issuer", field=name)
        if value not in (AUDIENCE_ENDPOINT, AUDIENCE_ISSUER):  # then a URL naming the AS
            check_url(value, allow_http=self.allow_http, owner=f"{owner}: {name}", field=name)
