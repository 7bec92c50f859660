"""LocalIssuer: its parts put together.

The state, addresses and lifecycle (`_base`), keys and tokens (`_keys`), client authentication
(`_clients`), the endpoints it serves (`_endpoints`), faults and counters (`_faults`), over the
wire of `_http` and the signing of `_jws`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._endpoints import Endpoints
from ._faults import FaultsAndCounts
from ._testkit import issuer_config

if TYPE_CHECKING:
    from .._config import Issuer


class LocalIssuer(Endpoints, FaultsAndCounts):
    """An OAuth 2.0 authorization server on ``http://127.0.0.1:<port><path>`` for tests."""

    def issuer_config(self, **overrides: Any) -> Issuer:
        """The :class:`bearerguard.Issuer` that trusts this (started) issuer, for tests:
        ``ResourceServer(local_issuer.issuer_config())``. Its URL, audience and algorithms (and
        the secret of its HS* key), and no cool-down between JWKS fetches, so a token of a key
        made by :meth:`rotate` is accepted at once; ``overrides`` go to ``Issuer`` as given."""
        return issuer_config(self, **overrides)
