"""Three uvicorn replicas in processes of their own, one Redis, one LocalIssuer (issue 17).

Requests go round robin over the replicas. What the fleet shares goes through Redis alone (each
process has its own memory): one introspection call per token per TTL and one role lookup for
the fleet; a revocation seen by every replica within the TTL; Redis cut mid-run (the relay),
then back: no 500, the calls degrade to one per replica, then recover.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import redis

from bearerguard.testing import LocalIssuer

from .conftest import SECRET, Relay, free_port

ROOT = Path(__file__).parents[2]
TTL = 3.0  # cache_max_ttl of the replicas


class Roles(BaseHTTPRequestHandler):
    """`GET /roles/{id}`: the role's privileges, each request counted."""

    calls: ClassVar[Counter[str]] = Counter()

    def do_GET(self) -> None:
        role_id = self.path.rsplit("/", 1)[-1]
        Roles.calls[role_id] += 1
        body = b'{"privileges": ["priv-%s"]}' % role_id.encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def role_endpoint() -> Iterator[str]:
    Roles.calls.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Roles)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/roles"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def replicas(count: int, environ: dict[str, str]) -> Iterator[list[str]]:
    ports = [free_port() for _ in range(count)]
    env = os.environ | environ | {"PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    command = [sys.executable, "-m", "uvicorn", "tests.stores.replica_app:app"]
    options = ["--host", "127.0.0.1", "--log-level", "warning"]
    processes = [
        subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [*command, *options, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}/" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for url, process in zip(urls, processes, strict=True):
            while True:
                assert process.poll() is None, process.stdout.read() if process.stdout else b""
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(url, timeout=1).status_code == 401:
                        break
                assert time.monotonic() < deadline, "a replica did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def test_three_replicas_share_redis(
    local_issuer: LocalIssuer, relay: Relay, redis_db: redis.Redis
) -> None:
    with role_endpoint() as roles_url:
        environ = {
            "BEARERGUARD_REDIS_URL": relay.url,
            "BEARERGUARD_REDIS_SECRET": SECRET,
            "BEARERGUARD_INTROSPECTION_ENDPOINT": local_issuer.introspection_endpoint,
            "BEARERGUARD_INTROSPECTION_CLIENT_ID": "test-client",
            "BEARERGUARD_INTROSPECTION_CLIENT_SECRET": "test-secret",
            "BEARERGUARD_INTROSPECTION_ALLOW_HTTP": "true",
            "BEARERGUARD_INTROSPECTION_CACHE_MAX_TTL": str(TTL),
            "BEARERGUARD_INTROSPECTION_MAX_CALLS_PER_SECOND": "1000",
            "REPLICA_ROLES_URL": roles_url,
        }
        with replicas(3, environ) as urls, httpx.Client(timeout=10) as client:
            turn = iter(range(10**6))

            def get(token: str) -> httpx.Response:
                url = urls[next(turn) % len(urls)]
                return client.get(url, headers={"authorization": f"Bearer {token}"})

            def accepted(token: str, client_id: str) -> None:
                answer = get(token)
                assert answer.status_code == 200, answer.text
                assert answer.json() == {"client": client_id, "scopes": ["priv-3", "read"]}

            def mint(client_id: str) -> str:
                return local_issuer.mint_opaque(scope="read api-role:3", client_id=client_id)

            # One introspection per token and one role lookup, for the fleet.
            tokens = {mint(f"c{i}"): f"c{i}" for i in range(5)}
            local_issuer.reset_counts()
            for _ in range(2):
                for token, client_id in tokens.items():
                    for _ in urls:
                        accepted(token, client_id)
            assert local_issuer.count("introspect") == len(tokens)
            assert Roles.calls == {"3": 1}

            # A revocation: every replica refuses the token once its answer's TTL has run out.
            revoked = next(iter(tokens))
            local_issuer.revoke(revoked)
            local_issuer.reset_counts()
            time.sleep(TTL + 0.2)
            for _ in range(2 * len(urls)):
                assert get(revoked).status_code == 401
            assert local_issuer.count("introspect") == 1  # the others read the refusal

            # Redis down: no 500, every replica asks the AS itself; then back to one call.
            relay.cut()
            local_issuer.reset_counts()
            for i in range(3):
                token = mint(f"down{i}")
                for _ in urls:
                    accepted(token, f"down{i}")
            assert get(revoked).status_code == 401  # its local copy of the refusal, or the AS
            assert local_issuer.count("introspect") - 3 * len(urls) in (0, 1)
            relay.resume()
            time.sleep(1.2)  # the RedisStore's retry_after
            for _ in urls:  # each replica's next call finds Redis again
                accepted(mint("probe"), "probe")
            local_issuer.reset_counts()
            token = mint("back")
            for _ in range(2):
                for _ in urls:
                    accepted(token, "back")
            assert local_issuer.count("introspect") == 1
