"""The test kit: a LocalIssuer and AccessToken values for tests (see `_issuer`)."""

from __future__ import annotations

from ._issuer import LocalIssuer, RecordedRequest, access_token

__all__ = ["LocalIssuer", "RecordedRequest", "access_token"]

for _obj in (LocalIssuer, RecordedRequest):
    _obj.__module__ = __name__  # documented as bearerguard.testing.X, as before the move
