"""bearerguard: protect HTTP APIs as an OAuth 2.0 resource server.

Verify JWT access tokens against a cached, self-healing JWKS (or a shared secret), check their
claims and scopes, introspect opaque tokens (RFC 7662), and answer refusals the way RFC 6750 says.
"""

import inspect as _inspect
import sys as _sys
from contextlib import suppress as _suppress

from ._challenge import Challenge, challenge_for
from ._claims import ClaimsPolicy
from ._config import ASYMMETRIC_ALGORITHMS, Issuer, JWKSPolicy
from ._config_introspection import Introspection
from ._credentials import Credentials, RequestContext
from ._dpop import DPoPPolicy
from ._errors import (
    BearerError,
    BearerGuardError,
    ConfigurationError,
    InsufficientScopeError,
    InvalidDPoPProofError,
    InvalidRequestError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
    UpstreamUnavailableError,
)
from ._events import Events
from ._jwks import JWKSStatus
from ._policy import PolicyTable, Rule, ScopeGrants
from ._proxy import TrustedProxies
from ._rolelookup import HTTPRoleLookup
from ._roles import RoleResolver
from ._scopes import Requirement
from ._server import ResourceServer
from ._store import MemoryStore, Store, StoreError, StoreStatus, TieredStore
from ._token import AccessToken

__version__ = "0.1.0.dev0"

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AccessToken",
    "BearerError",
    "BearerGuardError",
    "Challenge",
    "ClaimsPolicy",
    "ConfigurationError",
    "Credentials",
    "DPoPPolicy",
    "Events",
    "HTTPRoleLookup",
    "InsufficientScopeError",
    "Introspection",
    "InvalidDPoPProofError",
    "InvalidRequestError",
    "InvalidTokenError",
    "Issuer",
    "JWKSPolicy",
    "JWKSStatus",
    "MemoryStore",
    "MissingTokenError",
    "PolicyTable",
    "Reason",
    "RequestContext",
    "Requirement",
    "ResourceServer",
    "RoleResolver",
    "Rule",
    "ScopeGrants",
    "Store",
    "StoreError",
    "StoreStatus",
    "TieredStore",
    "TrustedProxies",
    "UpstreamUnavailableError",
    "__version__",
    "challenge_for",
]


def _present(cls: type) -> None:
    """Show `cls` as `bearerguard.X`. Its annotations are resolved first, where it was defined
    (with the facade's names for those imported only for type checking): `typing.get_type_hints`
    reads them in `cls.__module__`, which then no longer holds the names they use."""
    module = _sys.modules[cls.__module__]
    with _suppress(NameError, TypeError, AttributeError):  # kept as strings: hints then fail
        namespace = {**globals(), **vars(module)}
        cls.__annotations__ = _inspect.get_annotations(cls, globals=namespace, eval_str=True)
    cls.__module__ = __name__  # public names are documented as bearerguard.X


for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _present(_obj)
del _name, _obj
