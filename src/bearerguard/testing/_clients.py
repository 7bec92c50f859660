"""How a LocalIssuer authenticates its clients: client secrets (RFC 6749 §2.3.1, basic or in the
form) and private_key_jwt assertions (RFC 7523 §2.2, §3)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jwt

from ._base import IssuerBase
from ._http import RecordedRequest, Response, decode_basic, oauth_error

if TYPE_CHECKING:
    from jwt.types import Options  # PyJWT 2.10+; the lower bound is 2.8

_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
# Time-based checks are done by is_current, against the issuer's (possibly fake) clock.
CLOCK_CHECKS_OFF: Options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="LocalIssuer"'}


def _audience_list(audiences: str | Sequence[str] | None, *, default: Sequence[str]) -> list[str]:
    if audiences is None:
        return list(default)
    return [audiences] if isinstance(audiences, str) else list(audiences)  # not its characters


def is_current(claims: Mapping[str, Any], now: float) -> bool:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is not None and (not isinstance(exp, int | float) or exp <= now):
        return False
    return nbf is None or (isinstance(nbf, int | float) and nbf <= now)


class ClientAuthentication(IssuerBase):
    """Who may call a :class:`LocalIssuer`'s token and introspection endpoints."""

    def register_client_key(self, client_id: str, public_key: Any, alg: str = "RS256") -> None:
        """Let ``client_id`` authenticate with ``private_key_jwt`` (RFC 7523 §2.2): assertions
        signed with ``alg`` by the private half of ``public_key`` (a ``cryptography`` key), for an
        audience in ``client_assertion_audiences``."""
        with self._lock:
            self._client_keys[client_id] = (public_key, alg)

    def _authenticate(self, request: RecordedRequest, endpoint: str) -> str | Response:
        """The authenticated client_id, or the error response to send."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        basic = scheme.lower() == "basic"
        methods = basic + ("client_secret" in request.form) + ("client_assertion" in request.form)
        if methods > 1:
            return oauth_error(400, "invalid_request", "more than one authentication method")
        if "client_assertion" in request.form:
            return self._authenticate_assertion(request.form, endpoint)
        if basic:
            pair = decode_basic(credentials)
        else:
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
            pair = None if client_id is None or secret is None else (client_id, secret)
        if pair is None or pair[0] not in self._clients:
            return oauth_error(401, "invalid_client", "unknown client", _CHALLENGE)
        if not hmac.compare_digest(self._clients[pair[0]].encode(), pair[1].encode()):
            return oauth_error(401, "invalid_client", "bad client secret", _CHALLENGE)
        return pair[0]

    def _authenticate_assertion(self, form: Mapping[str, str], endpoint: str) -> str | Response:
        """RFC 7523 §3: signed by the client's key, iss = sub = client_id, for us, current, new."""
        if form.get("client_assertion_type") != _ASSERTION_TYPE:
            return oauth_error(400, "invalid_request", "unsupported client_assertion_type")
        assertion, audiences = form["client_assertion"], self.client_assertion_audiences
        try:
            iss = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
            client_id = iss if isinstance(iss, str) else ""  # "" is no registered client
            with self._lock:
                registered = self._client_keys.get(client_id)
            if registered is None or form.get("client_id", client_id) != client_id:
                return oauth_error(401, "invalid_client", "unknown client", _CHALLENGE)
            claims = jwt.decode(
                assertion,
                registered[0],
                algorithms=[registered[1]],
                audience=_audience_list(audiences, default=(self.issuer, endpoint)),
                issuer=client_id,
                options={"require": ["sub", "exp", "jti"], **CLOCK_CHECKS_OFF},
            )
        except jwt.InvalidTokenError:
            return oauth_error(401, "invalid_client", "bad client assertion", _CHALLENGE)
        jti, now = claims["jti"], self._clock()
        if claims["sub"] != client_id or not isinstance(jti, str) or not is_current(claims, now):
            return oauth_error(401, "invalid_client", "bad client assertion", _CHALLENGE)
        with self._lock:
            if (client_id, jti) in self._seen_jtis:
                return oauth_error(401, "invalid_client", "replayed client assertion", _CHALLENGE)
            self._seen_jtis.add((client_id, jti))
        return client_id
