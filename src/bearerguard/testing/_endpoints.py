"""The endpoints a LocalIssuer serves: discovery metadata (OpenID Connect and RFC 8414), the
JWKS, a client-credentials token endpoint (RFC 6749 §4.4) and introspection (RFC 7662)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt

from ._clients import CLOCK_CHECKS_OFF, ClientAuthentication, is_current
from ._http import RecordedRequest, Response, json_bytes, json_response, oauth_error
from ._keys import KeysAndTokens

_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class Endpoints(KeysAndTokens, ClientAuthentication):
    """The HTTP endpoints of a :class:`LocalIssuer`."""

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

    # -- HTTP --------------------------------------------------------------------------------

    def _route(self, request: RecordedRequest) -> Response:
        paths = self._endpoint_paths()
        routes: dict[str, tuple[str, Callable[[RecordedRequest], Response]]] = {
            paths["jwks"]: ("GET", self._serve_jwks),
            paths["token"]: ("POST", self._serve_token),
            paths["introspect"]: ("POST", self._serve_introspection),
        }
        if self._discovery in ("oidc", "both"):
            routes[paths["openid-configuration"]] = ("GET", self._serve_metadata)
        if self._discovery in ("oauth", "both"):
            routes[paths["oauth-authorization-server"]] = ("GET", self._serve_metadata)
        if request.path not in routes:
            return oauth_error(404, "not_found", f"no endpoint at {request.path}")
        method, serve = routes[request.path]
        if request.method != method:
            return oauth_error(405, "method_not_allowed", f"use {method}", {"Allow": method})
        return serve(request)

    def _serve_metadata(self, request: RecordedRequest) -> Response:
        return json_response(200, self.metadata())

    def _serve_jwks(self, request: RecordedRequest) -> Response:
        with self._lock:
            raw = self._jwks_body
        headers = {}
        if self._cache_max_age is not None:
            headers["Cache-Control"] = f"public, max-age={self._cache_max_age}"
        return Response(200, json_bytes(self.jwks()) if raw is None else raw, headers=headers)

    def _serve_token(self, request: RecordedRequest) -> Response:
        client_id = self._authenticate(request, self.token_endpoint)
        if isinstance(client_id, Response):
            return client_id
        form = request.form
        if "grant_type" not in form:
            return oauth_error(400, "invalid_request", "grant_type is required")
        if form["grant_type"] != "client_credentials":
            return oauth_error(400, "unsupported_grant_type")
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
        return json_response(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _serve_introspection(self, request: RecordedRequest) -> Response:
        with self._lock:
            override = self._introspection_override
        if override is not None:
            return override
        client_id = self._authenticate(request, self.introspection_endpoint)
        if isinstance(client_id, Response):
            return client_id
        token = request.form.get("token")
        if not token:
            return oauth_error(400, "invalid_request", "token is required")
        return json_response(200, self._introspect(token))

    def _introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            revoked = token in self._revoked
            record = self._opaque.get(token)
        if record is not None:
            claims: dict[str, Any] | None = {"iss": self.issuer, **record}
        else:
            claims = self._own_jwt_claims(token)
        if revoked or claims is None or not is_current(claims, self._clock()):
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
                options={"verify_aud": False, **CLOCK_CHECKS_OFF},
            )
        except jwt.InvalidTokenError:
            return None
