"""Keys and tokens of a LocalIssuer: the key ring (rotation, retirement, the JWKS) and the
JWT and opaque access tokens it mints."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from .._validate import strings
from ._base import IssuerBase
from ._jws import SigningKey, compact_jws, generate_key


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


class KeysAndTokens(IssuerBase):
    """The key ring and the minting of a :class:`LocalIssuer`."""

    # -- keys --------------------------------------------------------------------------------

    def _key(self, kid: str) -> SigningKey:
        try:
            return self._keys[kid]
        except KeyError:
            raise KeyError(f"unknown kid {kid!r}") from None

    def kid(self, alg: str | None = None) -> str:
        """The current kid for ``alg`` (default: the first configured algorithm)."""
        alg = alg or self._algorithms[0]
        with self._lock:
            if alg not in self._current:
                raise ValueError(f"no {alg} key: pass it in algorithms=")
            return self._current[alg]

    def shared_secret(self, alg: str = "HS256") -> bytes:
        """The current HMAC secret for an HS* algorithm."""
        secret = self.private_key(self.kid(alg))
        if not isinstance(secret, bytes):
            raise ValueError(f"{alg} is not an HMAC algorithm")
        return secret

    def private_key(self, kid: str) -> Any:
        """The signing key for ``kid``: a cryptography private key, or bytes for HS*."""
        with self._lock:
            return self._key(kid).private

    def rotate(self, alg: str | None = None, *, keep_old: bool = True) -> str:
        """Make a new key current for ``alg``; the old one stays published if ``keep_old``.

        A server built from :meth:`issuer_config` accepts a token of the new key at once; one
        with the default ``JWKSPolicy`` fetches keys at most once per 10 s, so it refuses such
        a token (401, ``UNKNOWN_KID``) until then.
        """
        old_kid = self.kid(alg)
        new_key = generate_key(alg or self._algorithms[0])
        with self._lock:
            self._keys[old_kid].published = keep_old
            self._add_key(new_key)
        return new_key.kid

    def replace_key(self, kid: str | None = None) -> str:
        """Publish new key material under the same ``kid`` (default: the current key of the first
        algorithm), as an authorization server restarted with fresh keys may do. Tokens the old
        material signed no longer verify; ``mint(kid=kid)`` signs with the new one."""
        with self._lock:
            old = self._key(kid or self._current[self._algorithms[0]])
            new = generate_key(old.alg)
            self._keys[old.kid] = SigningKey(old.kid, old.alg, new.private, old.published)
            return old.kid

    def retire(self, kid: str) -> None:
        """Stop publishing ``kid`` (tokens it signs become unverifiable and inactive)."""
        with self._lock:
            self._key(kid).published = False

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: published asymmetric keys only."""
        with self._lock:
            keys = [k for k in self._keys.values() if k.published and not k.symmetric]
        return {"keys": [key.public_jwk() for key in keys]}

    # -- minting -----------------------------------------------------------------------------

    def mint(
        self,
        *,
        alg: str | None = None,
        kid: str | None = None,
        include_kid: bool = True,
        typ: str | None = None,
        headers: Mapping[str, Any] | None = None,
        subject: str | None = "test-client",
        audience: str | list[str] | _Unset | None = _UNSET,
        scope: str | list[str] | None = None,
        expires_in: float | _Unset | None = _UNSET,
        issuer: str | _Unset | None = _UNSET,
        omit: Iterable[str] = (),
        dpop_jkt: str | None = None,
        x5t_s256: str | None = None,
        **claims: Any,
    ) -> str:
        """Mint a signed JWT access token; this does not need the server to be running.

        ``alg`` defaults to the algorithm of ``kid``, else the first configured one;
        ``alg="none"`` gives an unsigned token. ``audience``, ``expires_in`` and ``issuer``
        default to the issuer's settings and are omitted when ``None``. ``headers`` override
        header members verbatim (``None`` removes one); ``claims`` add or override claims and
        ``omit`` removes them. A list ``scope`` is emitted as a JSON array, as some issuers do.
        ``dpop_jkt`` binds the token to a DPoP key (``cnf.jkt``, RFC 9449 §6): pass a
        ``DPoPKey``'s ``jkt``. ``x5t_s256`` binds it to a client certificate (``cnf["x5t#S256"]``,
        RFC 8705 §3): pass a ``ClientCertificate``'s ``x5t_s256``.
        """
        key = self._signing_key(alg, kid)
        header: dict[str, Any] = {"alg": alg or (key.alg if key else "none")}
        header["typ"] = typ or ("at+jwt" if self._rfc9068 else "JWT")
        if include_kid and key is not None:
            header["kid"] = key.kid
        header.update(headers or {})
        now = self._clock()
        lifetime = self.token_lifetime if isinstance(expires_in, _Unset) else expires_in
        defaults = {
            "iss": self.issuer if isinstance(issuer, _Unset) else issuer,
            "sub": subject,
            "aud": self.audience if isinstance(audience, _Unset) else audience,
            "iat": int(now),
            "exp": None if lifetime is None else int(now + lifetime),
            "jti": secrets.token_urlsafe(16),
            "client_id": subject,
            "scope": scope,
        }
        payload: dict[str, Any] = {k: v for k, v in defaults.items() if v is not None}
        if (cnf := _confirmation(dpop_jkt, x5t_s256)) is not None:
            payload["cnf"] = cnf
        payload.update(claims)
        for name in strings(omit, "omit", one=True):  # mint(omit="exp") omits one claim
            payload.pop(name, None)
        header = {name: value for name, value in header.items() if value is not None}
        return compact_jws(header, payload, key.private if key else None)

    def _signing_key(self, alg: str | None, kid: str | None) -> SigningKey | None:
        if alg == "none":
            return None
        if kid is None:
            kid = self.kid(alg)
        with self._lock:
            key = self._key(kid)
        if alg is not None and alg != key.alg:
            raise ValueError(f"kid {kid!r} is a {key.alg} key, not {alg}")
        return key

    def mint_opaque(
        self,
        *,
        scope: str | None = None,
        client_id: str | None = "test-client",
        expires_in: float | _Unset | None = _UNSET,
        token: str | None = None,
        dpop_jkt: str | None = None,
        x5t_s256: str | None = None,
        **extra: Any,
    ) -> str:
        """Mint a random opaque token that the introspection endpoint will know.

        ``client_id`` is also the answer's ``sub`` (``None`` leaves both out; ``sub=`` in
        ``extra`` sets it alone). ``expires_in`` defaults to the token lifetime (``None``: never
        expires); ``extra`` members are added to the introspection answer (``None`` removes
        one). ``token`` gives the token string itself (to mimic another issuer's format)
        instead of a random one. ``dpop_jkt`` binds it to a DPoP key (``cnf.jkt`` in the
        answer, RFC 9449 §6.2), ``x5t_s256`` to a client certificate (RFC 8705 §3.2).
        """
        now = self._clock()
        lifetime = self.token_lifetime if isinstance(expires_in, _Unset) else expires_in
        record = {
            "scope": scope,
            "client_id": client_id,
            "sub": client_id,
            "token_type": "Bearer",
            "iat": int(now),
            "exp": None if lifetime is None else int(now + lifetime),
            "cnf": _confirmation(dpop_jkt, x5t_s256),
            **extra,
        }
        token = secrets.token_urlsafe(32) if token is None else token
        with self._lock:
            self._opaque[token] = {k: v for k, v in record.items() if v is not None}
        return token

    def revoke(self, token: str) -> None:
        """Make introspection report ``token`` (opaque or JWT) as inactive."""
        with self._lock:
            self._revoked.add(token)


def _confirmation(jkt: str | None, x5t_s256: str | None) -> dict[str, str] | None:
    """The `cnf` claim binding a token to a DPoP key and/or a client certificate, if any."""
    cnf = {"jkt": jkt, "x5t#S256": x5t_s256}
    return {name: value for name, value in cnf.items() if value is not None} or None
