"""Configuration of a trusted issuer and of its key cache: frozen values, validated when built.

Every choice that matters for security has a safe default and is written down here: the
algorithms come from this configuration and never from a token; HS256/384/512 need an explicit
shared secret of at least the hash size (RFC 7518 §3.2); keys are fetched over HTTPS unless the
host is loopback or plain HTTP is allowed explicitly; `exp` is required unless removed from
`required_claims`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

from ._claims import RFC9068_CLAIMS, ClaimsPolicy
from ._errors import ConfigurationError
from ._frozen import CLIENT_ID_CLAIMS
from ._scopes import DEFAULT_SCOPE_CLAIMS
from ._urls import check_url, metadata_urls
from ._validate import claim_names, seconds, strings

if TYPE_CHECKING:
    from ._roles import RoleResolver

logger = logging.getLogger("bearerguard")

ASYMMETRIC_ALGORITHMS = (
    *(f"{family}{bits}" for family in ("RS", "PS", "ES") for bits in (256, 384, 512)),
    "EdDSA",
)
_HMAC_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
# What an issuer may allow: the algorithms `_keys` imports keys for (a test pins that they agree;
# the configuration does not import `_keys`, so that it stays below the key handling).
SUPPORTED_ALGORITHMS = frozenset((*ASYMMETRIC_ALGORITHMS, *_HMAC_BYTES))


@dataclass(frozen=True, slots=True, kw_only=True)
class JWKSPolicy:
    """How long keys are trusted, and how often the issuer may be asked. Durations in seconds."""

    default_ttl: float = 300.0  # when the JWKS response has no Cache-Control: max-age
    min_ttl: float = 60.0
    max_ttl: float = 86400.0
    min_refetch_interval: float = 10.0  # at most one fetch per interval, for any reason
    stale_if_error: float = 3600.0  # how long past their TTL keys serve while the issuer is down

    def __post_init__(self) -> None:
        if not 0 <= self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ValueError("JWKSPolicy needs 0 <= min_ttl <= default_ttl <= max_ttl")
        if self.min_refetch_interval < 0 or self.stale_if_error < 0:
            raise ValueError("JWKSPolicy durations must not be negative")

    def ttl(self, max_age: float | None) -> float:
        ttl = self.default_ttl if max_age is None else max_age
        return min(max(ttl, self.min_ttl), self.max_ttl)


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuer:
    """One authorization server whose access tokens this resource server accepts.

    `audience` is required: the identifier(s) of this API as the issuer puts them in `aud`. Pass
    `audience=None` only if the issuer's tokens carry no audience you can check (RFC 8725 §3.9
    explains what that gives up). Keys come from `jwks_uri`, or else from the metadata found at
    `discovery_url`, or else from the issuer's OIDC and RFC 8414 well-known documents.

    `claim_values` names claims that must be present with one of the given values, for
    issuers whose tokens identify their audience otherwise: AWS Cognito access tokens carry no
    `aud` but `client_id` and `token_use: "access"`. `roles` resolves role-ID scopes (Jamf's
    `api-role:2`) to privileges (see `RoleResolver`).

    Example::

        Issuer(issuer="https://login.example.com/tenant", audience="api://orders")
    """

    issuer: str
    audience: str | Sequence[str] | None
    algorithms: Sequence[str] = ASYMMETRIC_ALGORITHMS
    jwks_uri: str | None = None
    discovery_url: str | None = None
    shared_secret: str | bytes | None = field(default=None, repr=False)
    leeway: float | timedelta = 30.0
    required_claims: Sequence[str] = ("exp",)
    rfc9068: bool = False
    max_token_age: float | timedelta | None = None
    scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS
    client_id_claims: Sequence[str] = CLIENT_ID_CLAIMS
    jwks_policy: JWKSPolicy = field(default_factory=JWKSPolicy)
    allow_http: bool = False
    claim_values: Mapping[str, str | Sequence[str]] = field(default_factory=dict, hash=False)
    roles: RoleResolver | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ConfigurationError("issuer must be a non-empty string", field="issuer")
        algorithms = tuple(dict.fromkeys(strings(self.algorithms, "algorithms", owner=self.issuer)))
        if not algorithms:
            raise ConfigurationError(
                f"{self.issuer}: algorithms must not be empty", field="algorithms"
            )
        for alg in algorithms:
            if alg not in SUPPORTED_ALGORITHMS:  # `none` included: RFC 8725 §3.1
                raise ConfigurationError(
                    f"{self.issuer}: unsupported algorithm {alg!r}", field="algorithms"
                )
        object.__setattr__(self, "algorithms", algorithms)
        self._check_secret(algorithms)
        object.__setattr__(self, "claim_values", self._values())
        if self.audience is None:
            if not self.claim_values:  # e.g. Cognito's client_id stands in for aud
                logger.warning(
                    "issuer %s: the aud claim is not checked (audience=None)", self.issuer
                )
        else:
            audience = strings(self.audience, "audience", owner=self.issuer, one=True)
            if not audience:
                raise ConfigurationError(
                    f"{self.issuer}: audience must be non-empty strings", field="audience"
                )
            object.__setattr__(self, "audience", tuple(audience))
        object.__setattr__(self, "leeway", seconds(self.leeway, "leeway"))
        object.__setattr__(self, "max_token_age", seconds(self.max_token_age, "max_token_age"))
        for name in ("required_claims", "scope_claims"):
            object.__setattr__(self, name, strings(getattr(self, name), name, owner=self.issuer))
        object.__setattr__(
            self,
            "client_id_claims",
            claim_names(self.client_id_claims, "client_id_claims", self.issuer),
        )
        self._check_url(self.jwks_uri, "jwks_uri")
        for url in self.discovery_urls:
            self._check_url(url, "discovery_url" if self.discovery_url else "issuer")

    def _values(self) -> Mapping[str, tuple[str, ...]]:
        values = {}
        for name, given in dict(self.claim_values).items():
            allowed = strings(given, "claim_values", owner=f"{self.issuer}: {name!r}", one=True)
            if not (isinstance(name, str) and name and allowed):
                raise ConfigurationError(
                    f"{self.issuer}: claim_values needs claim names and allowed values",
                    field="claim_values",
                )
            values[name] = allowed
        return MappingProxyType(values)

    def _check_secret(self, algorithms: tuple[str, ...]) -> None:
        hmac = [alg for alg in algorithms if alg in _HMAC_BYTES]
        if hmac and self.shared_secret is None:
            raise ConfigurationError(
                f"{self.issuer}: {hmac[0]} needs an explicit shared_secret", field="shared_secret"
            )
        if self.shared_secret is not None:
            if not hmac:
                raise ConfigurationError(
                    f"{self.issuer}: shared_secret is set but no HS* algorithm is allowed",
                    field="algorithms",
                )
            need = max(_HMAC_BYTES[alg] for alg in hmac)
            if len(self.secret_bytes or b"") < need:
                raise ConfigurationError(
                    f"{self.issuer}: the shared secret must be at least {need} bytes for "
                    f"{'/'.join(hmac)} (RFC 7518 §3.2)",
                    field="shared_secret",
                )

    def _check_url(self, url: str | None, field: str) -> None:
        check_url(url, allow_http=self.allow_http, owner=self.issuer, field=field)

    @property
    def secret_bytes(self) -> bytes | None:
        secret = self.shared_secret
        return secret.encode("utf-8") if isinstance(secret, str) else secret

    @property
    def uses_jwks(self) -> bool:
        return any(alg not in _HMAC_BYTES for alg in self.algorithms)

    @property
    def discovery_urls(self) -> tuple[str, ...]:
        if self.jwks_uri is not None or not self.uses_jwks:
            return ()
        if self.discovery_url is not None:
            return (self.discovery_url,)
        return metadata_urls(self.issuer)

    def claims_policy(self) -> ClaimsPolicy:
        required = {"iss", *self.required_claims}
        if self.audience is not None:
            required.add("aud")
        if self.rfc9068:
            required |= RFC9068_CLAIMS
        return ClaimsPolicy(
            issuer=self.issuer,
            audiences=None if self.audience is None else frozenset(self.audience),
            leeway=self.leeway,  # type: ignore[arg-type]  # normalised to float above
            required=frozenset(required),
            max_token_age=self.max_token_age,  # type: ignore[arg-type]
            values=tuple((name, frozenset(v)) for name, v in self.claim_values.items()),
        )
