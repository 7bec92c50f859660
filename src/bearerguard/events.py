"""What a `ResourceServer` reports, for logs, metrics, traces and audits.

Subscribe a callable to `server.events` (an `Events`), for every kind or some::

    def audit(event: TokenAccepted) -> None:
        audit_log.info("client %s of %s", event.client_id, event.issuer)

    server.events.subscribe(audit, TokenAccepted)

`log_event` (the library's log lines) is subscribed by default; pass `events=Events()` to a
`ResourceServer` to start from no subscriber at all. See `bearerguard._events` for the rules
every event keeps (no token, no secret; a subscriber that raises never fails a request).
"""

from ._events import (
    Event,
    Events,
    IntrospectionCalled,
    KeysFetched,
    RolesResolved,
    Subscriber,
    TokenAccepted,
    TokenRefused,
)
from ._logfields import log_event

__all__ = [
    "Event",
    "Events",
    "IntrospectionCalled",
    "KeysFetched",
    "RolesResolved",
    "Subscriber",
    "TokenAccepted",
    "TokenRefused",
    "log_event",
]
