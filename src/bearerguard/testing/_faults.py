"""Fault knobs of a LocalIssuer (outages, failures, delays, malformed bodies) and the
request counters that make caching and retries observable."""

from __future__ import annotations

from typing import Literal

from ._base import IssuerBase
from ._http import RecordedRequest, Response, html_response


class FaultsAndCounts(IssuerBase):
    """The fault knobs and request counters of a :class:`LocalIssuer`."""

    # -- fault knobs -------------------------------------------------------------------------

    def go_down(
        self, mode: Literal["error", "refuse", "hang"] = "error", status: int = 503
    ) -> None:
        """Answer every request with ``status`` ("error"), refuse connections ("refuse"), or take
        connections and requests and never answer ("hang") until :meth:`come_back`."""
        with self._lock:
            if mode == "refuse":
                self._refusing = True
                self._close_listener()
            elif mode == "hang":
                self._released.clear()
                self._hanging.set()
            else:
                self._down_status = status

    def come_back(self) -> None:
        """Undo :meth:`go_down`, listening again on the same port if it was refusing; requests
        held by "hang" are then answered."""
        with self._lock:
            self._hanging.clear()
            self._released.set()
            self._down_status = None
            if self._refusing and self._running:
                self._listen()
            self._refusing = False

    def fail_next(self, count: int, status: int = 500, body: bytes = b"<html>oops</html>") -> None:
        """Fail the next ``count`` requests (queued after failures already scheduled)."""
        with self._lock:
            self._failures.extend([html_response(status, body)] * count)

    def set_delay(self, seconds: float) -> None:
        """Sleep ``seconds`` before answering each request."""
        with self._lock:
            self._delay = seconds

    def set_jwks_body(self, body: bytes | None) -> None:
        """Serve these raw bytes at the JWKS endpoint (``None``: the real JWKS)."""
        with self._lock:
            self._jwks_body = body

    def set_introspection_body(self, body: bytes | None, status: int = 200) -> None:
        """Answer every introspection request with this raw JSON (``None``: normal answers)."""
        with self._lock:
            self._introspection_override = None if body is None else Response(status, body)

    # -- observation -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far."""
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = None) -> int:
        """Requests received for a URL path (as sent, e.g. "/tenant/jwks") or an endpoint
        name ("jwks", "token", "introspect", "openid-configuration",
        "oauth-authorization-server"); ``None`` counts every request."""
        if path is not None and not path.startswith("/"):
            names = self._endpoint_paths()
            if path not in names:
                raise ValueError(f"unknown endpoint {path!r}: use one of {sorted(names)}")
            path = names[path]
        with self._lock:
            return self._counts.total() if path is None else self._counts[path]

    def reset_counts(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._counts.clear()
            self._requests.clear()
