"""What every part of a LocalIssuer shares: its state, its addresses, its lifecycle, and the
one entry of every request (recorded, then failed on purpose or routed)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Self

from anyio import to_thread

from .._validate import strings
from ._http import RecordedRequest, Response, Server, html_response
from ._jws import SigningKey, generate_key


class IssuerBase:
    """The state and addresses of a :class:`LocalIssuer`; its parts add keys, tokens, faults
    and endpoints."""

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
        self._keys: dict[str, SigningKey] = {}
        self._current: dict[str, str] = {}
        for alg in self._algorithms:
            self._add_key(generate_key(alg))
        self._opaque: dict[str, dict[str, Any]] = {}
        self._revoked: set[str] = set()
        self._requests: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._running = self._refusing = False
        self._down_status: int | None = None
        self._hanging = threading.Event()  # set: requests are held until come_back() or stop()
        self._released = threading.Event()
        self._failures: list[Response] = []
        self._delay = 0.0
        self._jwks_body: bytes | None = None
        self._introspection_override: Response | None = None

    def _add_key(self, key: SigningKey) -> None:
        self._keys[key.kid] = key
        self._current[key.alg] = key.kid

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await to_thread.run_sync(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await to_thread.run_sync(self.stop)

    def _listen(self) -> None:
        server = Server((self._host, self._port), self._respond)
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

    # -- HTTP --------------------------------------------------------------------------------

    def _respond(self, request: RecordedRequest) -> Response:
        with self._lock:
            self._requests.append(request)
            self._counts[request.path] += 1
            delay = self._delay
            fault = None
            if self._down_status is not None:
                fault = html_response(self._down_status)
            elif self._failures:
                fault = self._failures.pop(0)
        if self._hanging.is_set():
            self._released.wait()
        if delay > 0:
            time.sleep(delay)
        return self._route(request) if fault is None else fault

    def _route(self, request: RecordedRequest) -> Response:
        raise NotImplementedError  # the endpoints (LocalIssuer)
