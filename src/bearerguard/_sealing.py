"""Names and values of a shared store that whoever can reach it cannot read or forge.

A store key `"kind:rest"` is named `"{prefix}:kind:{HMAC-SHA-256(secret, rest), 32 hex digits}"`:
the kind in plain (an operator can count or drop one kind), the rest keyed, so a token never
appears and nobody without the secret can compute where a chosen token's entry would go. A value
is stored behind a 128-bit HMAC tag over its name and bytes (RFC 2104 §5 allows truncation to
half the output), so an entry planted, or copied to another name, opens as None: a miss, logged
at WARNING at most once a minute. Names and tags use keys derived apart from one secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

from ._types import Clock

logger = logging.getLogger("bearerguard.store")

_TAG_BYTES = 16
_KIND = re.compile(r"[a-z][a-z0-9-]{0,15}")
_TAMPER_LOG_INTERVAL = 60.0


class Sealer:
    """Names keys and seals values with one secret; `where` names the store in the log line."""

    def __init__(self, secret: bytes, prefix: str, where: str, timer: Clock) -> None:
        self._names = hmac.new(secret, b"bearerguard store: key names", hashlib.sha256)
        self._tags = hmac.new(secret, b"bearerguard store: value tags", hashlib.sha256)
        self._prefix = prefix
        self._where = where
        self._timer = timer
        self._last_tamper_log = -_TAMPER_LOG_INTERVAL

    def name(self, key: str) -> str:
        kind, colon, rest = key.partition(":")
        if not colon or not _KIND.fullmatch(kind):
            # Not echoed: a key passed by mistake might be a token.
            raise ValueError("a store key is 'kind:rest' with a short lower-case kind")
        digest = self._names.copy()
        digest.update(rest.encode("utf-8", "surrogatepass"))
        return f"{self._prefix}:{kind}:{digest.hexdigest()[: 2 * _TAG_BYTES]}"

    def _tag(self, name: str, value: bytes) -> bytes:
        mac = self._tags.copy()
        mac.update(name.encode())
        mac.update(b"\n")
        mac.update(value)
        return mac.digest()[:_TAG_BYTES]

    def seal(self, name: str, value: bytes) -> bytes:
        return self._tag(name, value) + value

    def open(self, name: str, stored: object) -> bytes | None:
        """The value sealed under `name`, or None: absent, or not sealed with our secret."""
        if stored is None:
            return None
        if isinstance(stored, bytes) and len(stored) >= _TAG_BYTES:
            tag, value = stored[:_TAG_BYTES], stored[_TAG_BYTES:]
            if hmac.compare_digest(tag, self._tag(name, value)):
                return value
        now = self._timer()
        if now - self._last_tamper_log >= _TAMPER_LOG_INTERVAL:
            self._last_tamper_log = now
            logger.warning(
                "%s: an entry of kind %s has no valid tag (written with another "
                "secret, or not by bearerguard): read as a miss",
                self._where,
                name.split(":")[2],
            )
        return None
