"""A self-contained OAuth 2.0 authorization server for tests and demos.

:class:`LocalIssuer` mints JWT (RFC 9068) and opaque access tokens and serves, over real HTTP on
a loopback port from a background thread, discovery metadata (OpenID Connect and RFC 8414), a
JWKS, a client-credentials token endpoint (RFC 6749 §4.4) and an introspection endpoint
(RFC 7662). It shares no code with the rest of bearerguard on purpose, so that the verifier is
tested against an independent implementation (``issuer_config()`` and ``access_token()`` go the
other way: bearerguard's own values, built for tests). Fault knobs (outages, failures, delays,
malformed bodies) and request counters make caching and retry behaviour testable::

    with LocalIssuer(algorithms=("RS256", "ES256")) as issuer:
        server = ResourceServer(issuer.issuer_config())  # trusts it, keys by discovery
        token = issuer.mint(scope="read")
        assert server.verify(token).scopes == {"read"}
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import json
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import jwt
from anyio import to_thread
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .._validate import strings
from ._testkit import access_token, issuer_config

if TYPE_CHECKING:
    from jwt.types import Options  # PyJWT 2.10+; the lower bound is 2.8

    from .._config import Issuer

__all__ = ["LocalIssuer", "RecordedRequest", "access_token"]

_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVES: dict[str, ec.EllipticCurve] = {
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}
_HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
# Time-based checks are done by _is_current, against the issuer's (possibly fake) clock.
_CLOCK_CHECKS_OFF: Options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="LocalIssuer"'}


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


@dataclass(frozen=True)
class RecordedRequest:
    """One request received by a :class:`LocalIssuer` (header names are lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _SigningKey:
    kid: str
    alg: str
    private: Any  # a cryptography private key, or the shared secret (bytes) for HS*
    published: bool = True

    @property
    def symmetric(self) -> bool:
        return isinstance(self.private, bytes)

    def verification_key(self) -> Any:
        return self.private if self.symmetric else self.private.public_key()

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk = dict(algorithm.to_jwk(self.private.public_key(), as_dict=True))
        jwk.pop("key_ops", None)  # RFC 7517 §4.3: "use" and "key_ops" should not be mixed
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


def _generate_key(alg: str) -> _SigningKey:
    private: Any
    if alg in _RSA_ALGORITHMS:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg in _EC_CURVES:
        private = ec.generate_private_key(_EC_CURVES[alg])
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif alg in _HMAC_KEY_BYTES:
        private = secrets.token_bytes(_HMAC_KEY_BYTES[alg])
    else:
        raise ValueError(f"unsupported algorithm {alg!r}")
    return _SigningKey(f"{alg.lower()}-{secrets.token_hex(4)}", alg, private)


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact_jws(header: Mapping[str, Any], payload: Mapping[str, Any], key: Any) -> str:
    """Sign by hand (not ``jwt.encode``) so that every header member is emitted verbatim."""
    signing_input = f"{_b64url(_json_bytes(header))}.{_b64url(_json_bytes(payload))}"
    signature = b""
    if header.get("alg", "none") != "none":
        algorithm = jwt.get_algorithm_by_name(header["alg"])
        signature = algorithm.sign(signing_input.encode("ascii"), algorithm.prepare_key(key))
    return f"{signing_input}.{_b64url(signature)}"


def _json_response(
    status: int, document: Any, headers: Mapping[str, str] | None = None
) -> _Response:
    return _Response(status, _json_bytes(document), headers=headers or {})


def _oauth_error(
    status: int, error: str, description: str = "", headers: Mapping[str, str] | None = None
) -> _Response:
    document = {"error": error}
    if description:
        document["error_description"] = description
    return _json_response(status, document, headers)


def _html_response(status: int, body: bytes | None = None) -> _Response:
    return _Response(status, body or f"<html>{status}</html>".encode(), "text/html")


def _parse_form(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _decode_basic(credentials: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: base64 of form-urlencoded ``client_id:client_secret``."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if colon else None


def _audience_list(audiences: str | Sequence[str] | None, *, default: Sequence[str]) -> list[str]:
    if audiences is None:
        return list(default)
    return [audiences] if isinstance(audiences, str) else list(audiences)  # not its characters


def _is_current(claims: Mapping[str, Any], now: float) -> bool:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is not None and (not isinstance(exp, int | float) or exp <= now):
        return False
    return nbf is None or (isinstance(nbf, int | float) and nbf <= now)


class LocalIssuer:
    """An OAuth 2.0 authorization server on ``http://127.0.0.1:<port><path>`` for tests."""

    def __init__(
        self,
        *,
        algorithms: Sequence[str] = ("RS256",),
        path: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = 300.0,
        audience: str = "https://api.example.test",
        clients: Mapping[str, str] | None = None,
        discovery: Literal["oidc", "oauth", "both", "none"] = "both",
        cache_max_age: int | None = 300,
        clock: Callable[[], float] = time.time,
        rfc9068: bool = True,
        client_assertion_audiences: str | Sequence[str] | None = None,
    ) -> None:
        if not algorithms:
            raise ValueError("at least one algorithm is required")
        self.audience = audience
        # The `aud` values a private_key_jwt assertion may carry: None accepts this issuer's
        # identifier and the URL of the endpoint called; a list accepts exactly those (Okta, for
        # one, takes only the endpoint URL). Settable after start, when the URLs are known.
        self.client_assertion_audiences = client_assertion_audiences
        self.token_lifetime = token_lifetime
        self._algorithms = strings(algorithms, "algorithms", owner="LocalIssuer")
        self._path = "/" + path.strip("/") if path.strip("/") else ""
        self._host, self._port = host, port
        self._clients = dict({"test-client": "test-secret"} if clients is None else clients)
        self._client_keys: dict[str, tuple[Any, str]] = {}  # private_key_jwt: (public key, alg)
        self._seen_jtis: set[tuple[str, str]] = set()
        self._discovery = discovery
        self._cache_max_age = cache_max_age
        self._clock = clock
        self._rfc9068 = rfc9068
        self._lock = threading.Lock()
        self._keys: dict[str, _SigningKey] = {}
        self._current: dict[str, str] = {}
        for alg in self._algorithms:
            self._add_key(_generate_key(alg))
        self._opaque: dict[str, dict[str, Any]] = {}
        self._revoked: set[str] = set()
        self._requests: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._running = self._refusing = False
        self._down_status: int | None = None
        self._hanging = threading.Event()  # set: requests are held until come_back() or stop()
        self._released = threading.Event()
        self._failures: list[_Response] = []
        self._delay = 0.0
        self._jwks_body: bytes | None = None
        self._introspection_override: _Response | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalIssuer:
        """Start serving (on the same port as before when restarted); returns ``self``."""
        with self._lock:
            if self._running:
                raise RuntimeError("LocalIssuer is already running")
            self._listen()
            self._running, self._refusing = True, False
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (fault knobs are kept). Idempotent."""
        self._released.set()  # held requests go (their clients gave up long ago)
        with self._lock:
            self._running = self._refusing = False
            self._close_listener()

    def __enter__(self) -> LocalIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> LocalIssuer:
        return await to_thread.run_sync(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await to_thread.run_sync(self.stop)

    def _listen(self) -> None:
        server = _Server((self._host, self._port), self)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how quickly stop() returns
            name=f"LocalIssuer:{self._port}",
            daemon=True,
        )
        self._thread.start()

    def _close_listener(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None and thread is not None:
            server.shutdown()
            server.server_close()
            thread.join()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port; chosen by the OS on the first start when ``port=0``, then kept."""
        if self._port == 0:
            raise RuntimeError("LocalIssuer has no port yet: call start() first")
        return self._port

    @property
    def issuer(self) -> str:
        """The issuer identifier (``iss``), without a trailing slash."""
        return f"http://{self._host}:{self.port}{self._path}"

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/jwks"

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "/token"

    @property
    def introspection_endpoint(self) -> str:
        return self.issuer + "/introspect"

    @property
    def openid_configuration_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    @property
    def oauth_metadata_url(self) -> str:
        """RFC 8414 §3: the well-known suffix goes between the host and the issuer path."""
        return f"http://{self._host}:{self.port}/.well-known/oauth-authorization-server{self._path}"

    def _endpoint_paths(self) -> dict[str, str]:
        return {
            "jwks": f"{self._path}/jwks",
            "token": f"{self._path}/token",
            "introspect": f"{self._path}/introspect",
            "openid-configuration": f"{self._path}/.well-known/openid-configuration",
            "oauth-authorization-server": f"/.well-known/oauth-authorization-server{self._path}",
        }

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The algorithms it has keys for; the first is the default of ``mint``."""
        return self._algorithms

    def issuer_config(self, **overrides: Any) -> Issuer:
        """The :class:`bearerguard.Issuer` that trusts this (started) issuer, for tests:
        ``ResourceServer(local_issuer.issuer_config())``. Its URL, audience and algorithms (and
        the secret of its HS* key), and no cool-down between JWKS fetches, so a token of a key
        made by :meth:`rotate` is accepted at once; ``overrides`` go to ``Issuer`` as given."""
        return issuer_config(self, **overrides)

    def metadata(self) -> dict[str, Any]:
        """The authorization server metadata served by the discovery endpoints."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": self.token_endpoint,
            "introspection_endpoint": self.introspection_endpoint,
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": _AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": _AUTH_METHODS,
        }

    # -- keys --------------------------------------------------------------------------------

    def _add_key(self, key: _SigningKey) -> None:
        self._keys[key.kid] = key
        self._current[key.alg] = key.kid

    def _key(self, kid: str) -> _SigningKey:
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
        new_key = _generate_key(alg or self._algorithms[0])
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
            new = _generate_key(old.alg)
            self._keys[old.kid] = _SigningKey(old.kid, old.alg, new.private, old.published)
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
        **claims: Any,
    ) -> str:
        """Mint a signed JWT access token; this does not need the server to be running.

        ``alg`` defaults to the algorithm of ``kid``, else the first configured one;
        ``alg="none"`` gives an unsigned token. ``audience``, ``expires_in`` and ``issuer``
        default to the issuer's settings and are omitted when ``None``. ``headers`` override
        header members verbatim (``None`` removes one); ``claims`` add or override claims and
        ``omit`` removes them. A list ``scope`` is emitted as a JSON array, as some issuers do.
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
        payload = {name: value for name, value in defaults.items() if value is not None}
        payload.update(claims)
        for name in strings(omit, "omit", one=True):  # mint(omit="exp") omits one claim
            payload.pop(name, None)
        header = {name: value for name, value in header.items() if value is not None}
        return _compact_jws(header, payload, key.private if key else None)

    def _signing_key(self, alg: str | None, kid: str | None) -> _SigningKey | None:
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
        **extra: Any,
    ) -> str:
        """Mint a random opaque token that the introspection endpoint will know.

        ``client_id`` is also the answer's ``sub`` (``None`` leaves both out; ``sub=`` in
        ``extra`` sets it alone). ``expires_in`` defaults to the token lifetime (``None``: never
        expires); ``extra`` members are added to the introspection answer (``None`` removes
        one). ``token`` gives the token string itself (to mimic another issuer's format)
        instead of a random one.
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

    def register_client_key(self, client_id: str, public_key: Any, alg: str = "RS256") -> None:
        """Let ``client_id`` authenticate with ``private_key_jwt`` (RFC 7523 §2.2): assertions
        signed with ``alg`` by the private half of ``public_key`` (a ``cryptography`` key), for an
        audience in ``client_assertion_audiences``."""
        with self._lock:
            self._client_keys[client_id] = (public_key, alg)

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
            self._failures.extend([_html_response(status, body)] * count)

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
            self._introspection_override = None if body is None else _Response(status, body)

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

    # -- HTTP --------------------------------------------------------------------------------

    def _respond(self, request: RecordedRequest) -> _Response:
        with self._lock:
            self._requests.append(request)
            self._counts[request.path] += 1
            delay = self._delay
            fault = None
            if self._down_status is not None:
                fault = _html_response(self._down_status)
            elif self._failures:
                fault = self._failures.pop(0)
        if self._hanging.is_set():
            self._released.wait()
        if delay > 0:
            time.sleep(delay)
        return self._route(request) if fault is None else fault

    def _route(self, request: RecordedRequest) -> _Response:
        paths = self._endpoint_paths()
        routes: dict[str, tuple[str, Callable[[RecordedRequest], _Response]]] = {
            paths["jwks"]: ("GET", self._serve_jwks),
            paths["token"]: ("POST", self._serve_token),
            paths["introspect"]: ("POST", self._serve_introspection),
        }
        if self._discovery in ("oidc", "both"):
            routes[paths["openid-configuration"]] = ("GET", self._serve_metadata)
        if self._discovery in ("oauth", "both"):
            routes[paths["oauth-authorization-server"]] = ("GET", self._serve_metadata)
        if request.path not in routes:
            return _oauth_error(404, "not_found", f"no endpoint at {request.path}")
        method, serve = routes[request.path]
        if request.method != method:
            return _oauth_error(405, "method_not_allowed", f"use {method}", {"Allow": method})
        return serve(request)

    def _serve_metadata(self, request: RecordedRequest) -> _Response:
        return _json_response(200, self.metadata())

    def _serve_jwks(self, request: RecordedRequest) -> _Response:
        with self._lock:
            raw = self._jwks_body
        headers = {}
        if self._cache_max_age is not None:
            headers["Cache-Control"] = f"public, max-age={self._cache_max_age}"
        return _Response(200, _json_bytes(self.jwks()) if raw is None else raw, headers=headers)

    def _authenticate(self, request: RecordedRequest, endpoint: str) -> str | _Response:
        """The authenticated client_id, or the error response to send."""
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        basic = scheme.lower() == "basic"
        methods = basic + ("client_secret" in request.form) + ("client_assertion" in request.form)
        if methods > 1:
            return _oauth_error(400, "invalid_request", "more than one authentication method")
        if "client_assertion" in request.form:
            return self._authenticate_assertion(request.form, endpoint)
        if basic:
            pair = _decode_basic(credentials)
        else:
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
            pair = None if client_id is None or secret is None else (client_id, secret)
        if pair is None or pair[0] not in self._clients:
            return _oauth_error(401, "invalid_client", "unknown client", _CHALLENGE)
        if not hmac.compare_digest(self._clients[pair[0]].encode(), pair[1].encode()):
            return _oauth_error(401, "invalid_client", "bad client secret", _CHALLENGE)
        return pair[0]

    def _authenticate_assertion(self, form: Mapping[str, str], endpoint: str) -> str | _Response:
        """RFC 7523 §3: signed by the client's key, iss = sub = client_id, for us, current, new."""
        if form.get("client_assertion_type") != _ASSERTION_TYPE:
            return _oauth_error(400, "invalid_request", "unsupported client_assertion_type")
        assertion, audiences = form["client_assertion"], self.client_assertion_audiences
        try:
            iss = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
            client_id = iss if isinstance(iss, str) else ""  # "" is no registered client
            with self._lock:
                registered = self._client_keys.get(client_id)
            if registered is None or form.get("client_id", client_id) != client_id:
                return _oauth_error(401, "invalid_client", "unknown client", _CHALLENGE)
            claims = jwt.decode(
                assertion,
                registered[0],
                algorithms=[registered[1]],
                audience=_audience_list(audiences, default=(self.issuer, endpoint)),
                issuer=client_id,
                options={"require": ["sub", "exp", "jti"], **_CLOCK_CHECKS_OFF},
            )
        except jwt.InvalidTokenError:
            return _oauth_error(401, "invalid_client", "bad client assertion", _CHALLENGE)
        jti, now = claims["jti"], self._clock()
        if claims["sub"] != client_id or not isinstance(jti, str) or not _is_current(claims, now):
            return _oauth_error(401, "invalid_client", "bad client assertion", _CHALLENGE)
        with self._lock:
            if (client_id, jti) in self._seen_jtis:
                return _oauth_error(401, "invalid_client", "replayed client assertion", _CHALLENGE)
            self._seen_jtis.add((client_id, jti))
        return client_id

    def _serve_token(self, request: RecordedRequest) -> _Response:
        client_id = self._authenticate(request, self.token_endpoint)
        if isinstance(client_id, _Response):
            return client_id
        form = request.form
        if "grant_type" not in form:
            return _oauth_error(400, "invalid_request", "grant_type is required")
        if form["grant_type"] != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type")
        scope = " ".join(form.get("scope", "").split()) or None
        if form.get("token_format") == "opaque":
            token = self.mint_opaque(scope=scope, client_id=client_id)
        else:
            audience = form.get("resource") or form.get("audience") or self.audience
            token = self.mint(subject=client_id, audience=audience, scope=scope)
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime),
        }
        if scope:
            answer["scope"] = scope
        return _json_response(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _serve_introspection(self, request: RecordedRequest) -> _Response:
        with self._lock:
            override = self._introspection_override
        if override is not None:
            return override
        client_id = self._authenticate(request, self.introspection_endpoint)
        if isinstance(client_id, _Response):
            return client_id
        token = request.form.get("token")
        if not token:
            return _oauth_error(400, "invalid_request", "token is required")
        return _json_response(200, self._introspect(token))

    def _introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            revoked = token in self._revoked
            record = self._opaque.get(token)
        if record is not None:
            claims: dict[str, Any] | None = {"iss": self.issuer, **record}
        else:
            claims = self._own_jwt_claims(token)
        if revoked or claims is None or not _is_current(claims, self._clock()):
            return {"active": False}
        return {"active": True, "token_type": "Bearer", **claims}

    def _own_jwt_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a JWT signed by one of our published keys, else ``None``."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            with self._lock:
                key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None or not key.published:
                return None
            return jwt.decode(
                token,
                key.verification_key(),
                algorithms=[key.alg],
                issuer=self.issuer,
                options={"verify_aud": False, **_CLOCK_CHECKS_OFF},
            )
        except jwt.InvalidTokenError:
            return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], issuer: LocalIssuer) -> None:
        self.issuer = issuer
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away (e.g. timed out during set_delay): not our bug
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server_version = "LocalIssuer"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(_oauth_error(400, "invalid_request", "bad Content-Length"))
            return
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = RecordedRequest(
            self.command, urlsplit(self.path).path, headers, _parse_form(headers, body)
        )
        self._send(cast(_Server, self.server).issuer._respond(request))

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)
