"""Server nonces for DPoP proofs (RFC 9449 §9), stateless: every replica that shares the
secret accepts the nonces of the others, and nothing is stored.

A nonce names a time window of `lifetime` seconds and carries an HMAC-SHA256 of it under the
secret: `"<window>.<mac>"` (RFC 9449 §8.1's NQCHAR alphabet). It is accepted in its window and
the next, so it lives between `lifetime` and twice that; after, the client gets a fresh one with
the `use_dpop_nonce` refusal (§9). A nonce does not stop replays (the `jti` check does): it
bounds when a proof can have been made, whatever the client's clock says (§11.2).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ._thumbprint import b64url

_MAC_BYTES = 16  # 128 bits: a forged nonce is a guess
_MAX_WINDOW_DIGITS = 20


class Nonces:
    """Issues and checks this server's nonces (`secret`: None for a random one, this process's
    alone)."""

    __slots__ = ("_key", "lifetime")

    def __init__(self, secret: bytes | None, lifetime: float) -> None:
        self._key = secret if secret is not None else secrets.token_bytes(32)
        self.lifetime = max(lifetime, 1.0)

    def issue(self, now: float) -> str:
        """A nonce for the current window."""
        window = int(now // self.lifetime)
        return f"{window}.{self._mac(window)}"

    def ok(self, nonce: str, now: float) -> bool:
        """Was `nonce` issued with this secret, in this window or the one before?"""
        window, dot, mac = nonce.partition(".")
        if not (dot and window.isascii() and window.isdigit()) or len(window) > _MAX_WINDOW_DIGITS:
            return False
        current = int(now // self.lifetime)
        issued = int(window)
        return current - 1 <= issued <= current and hmac.compare_digest(mac, self._mac(issued))

    def _mac(self, window: int) -> str:
        digest = hmac.new(self._key, str(window).encode(), hashlib.sha256).digest()
        return b64url(digest[:_MAC_BYTES])
