"""Configuration of a trusted issuer: one frozen value, validated when it is built.

Every choice that matters for security has a safe default and is written down here: the
algorithms come from this configuration and never from a token; HS256/384/512 need an explicit
shared secret of at least the hash size (RFC 7518 §3.2); keys are fetched over HTTPS unless the
host is loopback or plain HTTP is allowed explicitly; `exp` is required unless removed from
`required_claims`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from ._claims import RFC9068_CLAIMS, ClaimsPolicy
from ._discovery import metadata_urls, secure_url
from ._errors import ConfigurationError
from ._jwks import JWKSPolicy
from ._keys import SUPPORTED_ALGORITHMS
from ._scopes import DEFAULT_SCOPE_CLAIMS

logger = logging.getLogger("bearerguard")

ASYMMETRIC_ALGORITHMS = (
    *(f"{family}{bits}" for family in ("RS", "PS", "ES") for bits in (256, 384, 512)),
    "EdDSA",
)
_HMAC_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


def seconds(value: float | timedelta | None, name: str) -> float | None:
    """A duration in seconds from a number or a timedelta; `ConfigurationError` if negative."""
    if value is None:
        return None
    result = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not result >= 0:  # also refuses NaN
        raise ConfigurationError(
            f"{name} must be a non-negative duration, got {value!r}", field=name
        )
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuer:
    """One authorization server whose access tokens this resource server accepts.

    `audience` is required: the identifier(s) of this API as the issuer puts them in `aud`. Pass
    `audience=None` only if the issuer's tokens carry no audience you can check (RFC 8725 §3.9
    explains what that gives up). Keys come from `jwks_uri`, or else from the metadata found at
    `discovery_url`, or else from the issuer's OIDC and RFC 8414 well-known documents.

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
    jwks_policy: JWKSPolicy = field(default_factory=JWKSPolicy)
    allow_http: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ConfigurationError("issuer must be a non-empty string", field="issuer")
        algorithms = tuple(dict.fromkeys(self.algorithms))
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
        if self.audience is None:
            logger.warning("issuer %s: the aud claim is not checked (audience=None)", self.issuer)
        else:
            audience = (self.audience,) if isinstance(self.audience, str) else self.audience
            if not audience or not all(isinstance(a, str) and a for a in audience):
                raise ConfigurationError(
                    f"{self.issuer}: audience must be non-empty strings", field="audience"
                )
            object.__setattr__(self, "audience", tuple(audience))
        object.__setattr__(self, "leeway", seconds(self.leeway, "leeway"))
        object.__setattr__(self, "max_token_age", seconds(self.max_token_age, "max_token_age"))
        object.__setattr__(self, "required_claims", tuple(self.required_claims))
        object.__setattr__(self, "scope_claims", tuple(self.scope_claims))
        if not all(isinstance(c, str) and c for c in self.scope_claims):
            raise ConfigurationError(
                f"{self.issuer}: scope_claims must be non-empty strings", field="scope_claims"
            )
        self._check_url(self.jwks_uri, "jwks_uri")
        for url in self.discovery_urls:
            self._check_url(url, "discovery_url" if self.discovery_url else "issuer")

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
        if url is None:
            return
        if secure_url(url, allow_http=self.allow_http):
            return
        raise ConfigurationError(
            f"{self.issuer}: {url!r} must be an https URL (plain http only for loopback "
            f"or with allow_http=True)",
            field=field,
        )

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
        )
