"""No request waits longer than one upstream deadline; a key replaced under its kid is seen.

Against a real issuer on 127.0.0.1 (issues 13.4 and 14): the issuer hangs, goes down or slows
down while many requests need its keys; it republishes a `kid` with new key material; its
introspection endpoint fails. The fault drills at the end run a real app behind the middleware,
ASGI under uvicorn and WSGI under a threaded WSGI server, with concurrent clients.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
import uvicorn

from bearerguard import (
    Introspection,
    InvalidTokenError,
    Issuer,
    JWKSPolicy,
    Reason,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from ..conftest import FakeClock, Twin

Factory = Callable[..., LocalIssuer]
TIMEOUT = 0.4  # the upstream deadline of every server here (the default is 5 s)
MARGIN = 0.5  # what a loaded shared machine may add to it
COOL_DOWN = 1.0  # the refetch interval: the defaults (5 s timeout, 10 s) scaled alike
POLICY = JWKSPolicy(min_refetch_interval=COOL_DOWN, stale_if_error=600)


def bearer(token: str) -> str:
    return "Bearer " + token


def server_for(issuer: LocalIssuer, timer: FakeClock | None = None, **kw: Any) -> ResourceServer:
    config = Issuer(issuer=issuer.issuer, audience=issuer.audience, jwks_policy=POLICY)
    if timer is None:
        return ResourceServer(config, timeout=TIMEOUT, **kw)
    return ResourceServer(config, timeout=TIMEOUT, timer=timer.monotonic, **kw)


def forge(token: str) -> str:
    """`token` with another signature of the right length: a bad signature, well formed."""
    head, body, signature = token.split(".")
    size = len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    return f"{head}.{body}.{base64.urlsafe_b64encode(os.urandom(size)).rstrip(b'=').decode()}"


def timed(call: Callable[[], object]) -> tuple[float, str]:
    """How long `call` took, and what it gave: "ok", "503" or the refusal's reason."""
    start = time.monotonic()
    try:
        call()
        outcome = "ok"
    except UpstreamUnavailableError:
        outcome = "503"
    except InvalidTokenError as exc:
        outcome = exc.reason.name
    return time.monotonic() - start, outcome


# -- the test kit's fault knob ------------------------------------------------------------------


def test_local_issuer_hang_holds_requests_until_come_back(local_issuer: LocalIssuer) -> None:
    local_issuer.go_down("hang")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(local_issuer.jwks_uri, timeout=0.2)
    answers: list[int] = []
    waiting = threading.Thread(
        target=lambda: answers.append(httpx.get(local_issuer.jwks_uri, timeout=10).status_code)
    )
    waiting.start()
    time.sleep(0.2)
    assert not answers  # held
    local_issuer.come_back()
    waiting.join(5)
    assert answers == [200]


def test_local_issuer_replace_key_keeps_the_kid_and_changes_the_material(
    local_issuer: LocalIssuer,
) -> None:
    kid = local_issuer.kid("RS256")
    before = local_issuer.jwks()["keys"]
    old_token = local_issuer.mint(kid=kid)
    assert local_issuer.replace_key(kid) == kid
    after = local_issuer.jwks()["keys"]
    assert [k["kid"] for k in after] == [k["kid"] for k in before]
    (old_jwk,) = [k for k in before if k["kid"] == kid]
    (new_jwk,) = [k for k in after if k["kid"] == kid]
    assert old_jwk["n"] != new_jwk["n"]
    assert local_issuer.mint(kid=kid).split(".")[2] != old_token.split(".")[2]


# -- one deadline, one flight ---------------------------------------------------------------


@pytest.mark.parametrize("clients", [3, 20])
def test_issuer_hangs_no_thread_waits_past_one_deadline(
    local_issuer: LocalIssuer, clients: int
) -> None:
    # Discovery then the JWKS: two requests to a hanging issuer, one deadline for both; the
    # threads queued behind the fetch share its outcome instead of each starting another.
    local_issuer.go_down("hang")
    tokens = [local_issuer.mint() for _ in range(clients)]
    barrier = threading.Barrier(clients)
    with server_for(local_issuer) as server:

        def call(token: str) -> tuple[float, str]:
            barrier.wait()
            return timed(lambda: server.authenticate(bearer(token)))

        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(call, tokens))
    assert {outcome for _, outcome in results} == {"503"}
    assert max(wait for wait, _ in results) < TIMEOUT + MARGIN
    assert local_issuer.count() == 1  # one fetch in flight; the deadline ended the flow there


@pytest.mark.parametrize("clients", [3, 20])
def test_issuer_hangs_no_task_waits_past_one_deadline(
    local_issuer: LocalIssuer, clients: int
) -> None:
    local_issuer.go_down("hang")
    tokens = [local_issuer.mint() for _ in range(clients)]

    async def one(server: ResourceServer, token: str) -> tuple[float, str]:
        start = time.monotonic()
        try:
            await server.aauthenticate(bearer(token))
        except UpstreamUnavailableError:
            return time.monotonic() - start, "503"
        return time.monotonic() - start, "ok"

    async def main() -> list[tuple[float, str]]:
        async with server_for(local_issuer) as server:
            return list(await asyncio.gather(*(one(server, t) for t in tokens)))

    results = asyncio.run(main())
    assert {outcome for _, outcome in results} == {"503"}
    assert max(wait for wait, _ in results) < TIMEOUT + MARGIN
    assert local_issuer.count() == 1


def test_slow_issuer_each_request_fits_but_the_flow_does_not(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    # Each answer comes within the timeout, discovery plus JWKS do not: the flow's deadline.
    local_issuer.set_delay(TIMEOUT * 0.7)
    server = server_for(local_issuer)
    wait, outcome = timed(lambda: twin.authenticate(server, bearer(local_issuer.mint())))
    assert outcome == "503" and wait < TIMEOUT + MARGIN
    assert "Timeout" in (server.status()[0].last_error or "")
    local_issuer.set_delay(0)


def test_cool_down_counts_from_the_end_of_a_hung_attempt(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    # An attempt that lasts the whole deadline is followed by a whole cool-down without any
    # request to the issuer: it is not asked back to back.
    local_issuer.go_down("hang")
    server = server_for(local_issuer)
    token = local_issuer.mint()
    assert timed(lambda: twin.authenticate(server, bearer(token)))[1] == "503"
    assert local_issuer.count() == 1
    time.sleep(COOL_DOWN - TIMEOUT + 0.1)  # past a cool-down counted from the attempt's start
    wait, outcome = timed(lambda: twin.authenticate(server, bearer(token)))
    assert outcome == "503" and wait < 0.1  # answered at once: still cooling down
    assert local_issuer.count() == 1


@contextmanager
def _trickling(seconds: float) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that sends its response headers one byte every 50 ms, for
    `seconds`, then hangs up: each read comes well within any timeout, the answer never does."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            end = time.monotonic() + seconds
            for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: y\r\n" * 1000:
                if stop.is_set() or time.monotonic() > end:
                    return
                conn.sendall(bytes([byte]))
                time.sleep(0.05)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


TRICKLE = 2.0


def test_issuer_trickling_its_headers_threads_queued_behind_wait_one_deadline(
    local_issuer: LocalIssuer,
) -> None:
    # The sync driver cuts each socket timeout, not the sum of reads: the thread that fetches
    # waits as long as the trickle lasts. The threads queued behind it give up at the deadline.
    with _trickling(TRICKLE) as url:
        config = Issuer(
            issuer=local_issuer.issuer,
            audience=local_issuer.audience,
            jwks_uri=url + "/jwks",
            jwks_policy=POLICY,
        )
        tokens = [local_issuer.mint() for _ in range(5)]
        barrier = threading.Barrier(5)
        with ResourceServer(config, timeout=TIMEOUT) as server:

            def call(token: str) -> tuple[float, str]:
                barrier.wait()
                return timed(lambda: server.authenticate(bearer(token)))

            with ThreadPoolExecutor(5) as pool:
                results = sorted(pool.map(call, tokens))
    assert {outcome for _, outcome in results} == {"503"}
    assert max(wait for wait, _ in results[:-1]) < TIMEOUT + MARGIN
    assert results[-1][0] < TRICKLE + 1  # the fetching thread, bounded by the trickle's end


def test_warm_behind_a_trickling_fetch_returns_at_the_deadline(local_issuer: LocalIssuer) -> None:
    with _trickling(TRICKLE) as url:
        config = Issuer(
            issuer=local_issuer.issuer,
            audience=local_issuer.audience,
            jwks_uri=url + "/jwks",
            jwks_policy=POLICY,
        )
        with ResourceServer(config, timeout=TIMEOUT) as server, ThreadPoolExecutor(1) as pool:
            leader = pool.submit(timed, lambda: server.authenticate(bearer(local_issuer.mint())))
            time.sleep(0.1)  # the fetch is in flight
            start = time.monotonic()
            (status,) = server.warm()  # joins it, gives up at the deadline, does not raise
            assert time.monotonic() - start < TIMEOUT + MARGIN
            assert not status.usable
            assert leader.result()[1] == "503"


def test_issuer_trickling_its_headers_no_task_waits_past_one_deadline(
    local_issuer: LocalIssuer,
) -> None:
    with _trickling(TRICKLE) as url:
        config = Issuer(
            issuer=local_issuer.issuer,
            audience=local_issuer.audience,
            jwks_uri=url + "/jwks",
            jwks_policy=POLICY,
        )
        tokens = [local_issuer.mint() for _ in range(5)]

        async def one(server: ResourceServer, token: str) -> float:
            start = time.monotonic()
            with pytest.raises(UpstreamUnavailableError):
                await server.aauthenticate(bearer(token))
            return time.monotonic() - start

        async def main() -> list[float]:
            async with ResourceServer(config, timeout=TIMEOUT) as server:
                return list(await asyncio.gather(*(one(server, t) for t in tokens)))

        waits = asyncio.run(main())
    assert max(waits) < TIMEOUT + MARGIN  # the async driver cancels at the deadline


def test_introspection_trickling_its_headers_threads_queued_behind_wait_one_deadline() -> None:
    # Threads with one unseen opaque token share one introspection call; the sync driver cannot
    # cut the thread that makes it before the trickle ends, but those queued behind it give up
    # at the deadline, as behind a key fetch.
    with _trickling(TRICKLE) as url:
        introspection = Introspection(
            endpoint=url + "/introspect", client_id="rs", client_secret="rs-secret"
        )
        barrier = threading.Barrier(5)
        with ResourceServer(introspection=introspection, timeout=TIMEOUT) as server:

            def call(_: int) -> tuple[float, str]:
                barrier.wait()
                return timed(lambda: server.authenticate(bearer("one-opaque-token")))

            with ThreadPoolExecutor(5) as pool:
                results = sorted(pool.map(call, range(5)))
    assert {outcome for _, outcome in results} == {"503"}
    assert max(wait for wait, _ in results[:-1]) < TIMEOUT + MARGIN
    assert results[-1][0] < TRICKLE + 1  # the calling thread, bounded by the trickle's end


# -- a key replaced under the same kid (issue 14) -------------------------------------------------


def test_key_replaced_under_same_kid_new_tokens_accepted_old_ones_end(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(local_issuer, timer=clock)
    old = local_issuer.mint()
    twin.authenticate(server, bearer(old))  # cached, keys fresh for 300 s
    kid = local_issuer.replace_key()
    clock.advance(COOL_DOWN)  # the first fetch's cool-down is over; the keys are still fresh
    new = local_issuer.mint(kid=kid)
    assert twin.authenticate(server, bearer(new)).client_id == "test-client"
    assert local_issuer.count("jwks") == 2  # one refetch, then the retry with the new key
    with pytest.raises(InvalidTokenError) as info:
        twin.authenticate(server, bearer(old))  # was cached: it ends at once
    assert info.value.reason is Reason.BAD_SIGNATURE
    assert local_issuer.count("jwks") == 2  # inside the new cool-down: no fetch for it
    assert twin.authenticate(server, bearer(new)).client_id == "test-client"


def test_key_replaced_under_same_kid_seen_after_the_cool_down(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(local_issuer, timer=clock)
    twin.authenticate(server, bearer(local_issuer.mint()))
    kid = local_issuer.replace_key()
    new = local_issuer.mint(kid=kid)
    with pytest.raises(InvalidTokenError) as info:  # just fetched: the cool-down holds
        twin.authenticate(server, bearer(new))
    assert info.value.reason is Reason.BAD_SIGNATURE
    assert local_issuer.count("jwks") == 1
    clock.advance(COOL_DOWN)
    assert twin.authenticate(server, bearer(new)).client_id == "test-client"
    assert local_issuer.count("jwks") == 2


def test_issuer_config_sees_a_replaced_key_at_once(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = ResourceServer(local_issuer.issuer_config())  # the test kit's: no cool-down
    twin.authenticate(server, bearer(local_issuer.mint()))
    kid = local_issuer.replace_key()
    assert twin.authenticate(server, bearer(local_issuer.mint(kid=kid))).client_id


def test_key_replaced_while_the_issuer_is_down_is_503_not_401(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(local_issuer, timer=clock)
    twin.authenticate(server, bearer(local_issuer.mint()))
    kid = local_issuer.replace_key()
    local_issuer.go_down("error", status=503)
    clock.advance(COOL_DOWN)
    with pytest.raises(UpstreamUnavailableError) as info:  # maybe a key we could not see
        twin.authenticate(server, bearer(local_issuer.mint(kid=kid)))
    assert info.value.retry_after == COOL_DOWN
    local_issuer.come_back()
    clock.advance(COOL_DOWN)
    assert twin.authenticate(server, bearer(local_issuer.mint(kid=kid))).client_id


def test_known_kid_bad_signature_flood_costs_one_fetch_per_cool_down(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    server = server_for(local_issuer, timer=clock)
    twin.authenticate(server, bearer(local_issuer.mint()))

    def flood(n: int) -> None:
        for _ in range(n):
            forged = forge(local_issuer.mint())
            with pytest.raises(InvalidTokenError) as info:
                twin.authenticate(server, bearer(forged))
            assert info.value.reason is Reason.BAD_SIGNATURE

    flood(50)
    assert local_issuer.count("jwks") == 1  # inside the first fetch's cool-down: no fetch
    clock.advance(COOL_DOWN)
    flood(50)
    assert local_issuer.count("jwks") == 2  # one fetch for the whole flood
    clock.advance(COOL_DOWN / 2)
    flood(50)
    assert local_issuer.count("jwks") == 2
    clock.advance(COOL_DOWN / 2)
    flood(50)
    assert local_issuer.count("jwks") == 3


def test_known_kid_bad_signature_flood_from_threads_shares_one_fetch(
    local_issuer: LocalIssuer, clock: FakeClock
) -> None:
    with server_for(local_issuer, timer=clock) as server:
        server.warm()
        clock.advance(COOL_DOWN)
        local_issuer.set_delay(0.2)  # keep the refetch in flight while the others arrive
        forged = [forge(local_issuer.mint()) for _ in range(20)]
        barrier = threading.Barrier(20)

        def call(token: str) -> tuple[float, str]:
            barrier.wait()
            return timed(lambda: server.authenticate(bearer(token)))

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(call, forged))
    assert {outcome for _, outcome in results} == {"BAD_SIGNATURE"}
    assert local_issuer.count("jwks") == 2


# -- Retry-After on every upstream 503 (issue 14) --------------------------------------------------


@pytest.mark.parametrize("mode", ["error", "refuse", "hang"])
def test_introspection_outage_503_carries_retry_after(
    local_issuer: LocalIssuer, twin: Twin, mode: Any
) -> None:
    server = ResourceServer(
        introspection=Introspection(
            endpoint=local_issuer.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
        ),
        timeout=TIMEOUT,
    )
    token = local_issuer.mint_opaque(scope="a")
    local_issuer.go_down(mode)
    wait, outcome = timed(lambda: twin.authenticate(server, bearer(token)))
    assert outcome == "503" and wait < TIMEOUT + MARGIN
    with pytest.raises(UpstreamUnavailableError) as info:
        twin.authenticate(server, bearer(token))
    assert info.value.retry_after == 1  # the next request asks the AS again
    local_issuer.come_back()
    assert twin.authenticate(server, bearer(token)).scopes == {"a"}


# -- fault drills: a real app behind the middleware, concurrent clients ----------------------------


async def _hello_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _hello_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"hello"]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64  # wsgiref closes every connection: 20 clients reconnect at once


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""


@contextmanager
def _uvicorn(app: Any) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def _wsgiref(app: Any) -> Iterator[str]:
    httpd = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@contextmanager
def _served(kind: str, server: ResourceServer) -> Iterator[str]:
    if kind == "asgi":
        with _uvicorn(BearerAuthMiddleware(_hello_asgi, server)) as url:
            yield url
    else:
        with _wsgiref(BearerAuthWSGIMiddleware(_hello_wsgi, server)) as url:
            yield url


DRILL_SECONDS = 0.8
DRILL_COOL_DOWN = 0.5  # two fetches or so in a drill; still less than discovery plus the JWKS


@pytest.mark.parametrize("clients", [3, 20])
@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize("fault", ["down", "slow", "hang"])
def test_fault_drill_over_http(
    local_issuer: LocalIssuer, kind: str, clients: int, fault: str
) -> None:
    """While the issuer fails, clients send a cached token and tokens of a key just rotated in
    (each needs the issuer): only 200 and 503, never a wait past one deadline, and the cached
    token answers 200 throughout."""
    policy = JWKSPolicy(min_refetch_interval=DRILL_COOL_DOWN)
    server = ResourceServer(
        Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience, jwks_policy=policy),
        timeout=TIMEOUT,
    )
    cached = bearer(local_issuer.mint())
    with _served(kind, server) as url:
        assert httpx.get(url, headers={"authorization": cached}).status_code == 200
        time.sleep(DRILL_COOL_DOWN)  # so that the first token of the new key starts a fetch
        {"down": lambda: local_issuer.go_down("error", status=503),
         "slow": lambda: local_issuer.set_delay(TIMEOUT * 2),
         "hang": lambda: local_issuer.go_down("hang")}[fault]()  # fmt: skip
        local_issuer.rotate()  # tokens of the new kid need a refetch that cannot succeed
        barrier = threading.Barrier(clients)

        def client() -> list[tuple[float, str, int]]:
            seen: list[tuple[float, str, int]] = []
            with httpx.Client(base_url=url, timeout=30) as http:
                barrier.wait()
                stop = time.monotonic() + DRILL_SECONDS
                while time.monotonic() < stop:
                    for which, authorization in (
                        ("new", bearer(local_issuer.mint())),
                        ("cached", cached),
                    ):
                        start = time.monotonic()
                        status = http.get("/", headers={"authorization": authorization}).status_code
                        seen.append((time.monotonic() - start, which, status))
            return seen

        try:
            with ThreadPoolExecutor(clients) as pool:
                runs = [pool.submit(client) for _ in range(clients)]
                seen = [row for run in runs for row in run.result()]
        finally:
            local_issuer.come_back()
            local_issuer.set_delay(0)
    statuses = {(which, status) for _, which, status in seen}
    assert statuses <= {("new", 503), ("cached", 200)}, statuses
    assert ("new", 503) in statuses and ("cached", 200) in statuses
    worst = max(wait for wait, _, _ in seen)
    assert worst < TIMEOUT + MARGIN, f"a request waited {worst:.2f} s"


def test_injected_clients_without_timeouts_still_get_the_servers_deadline(
    local_issuer: LocalIssuer,
) -> None:
    # httpx.Client(timeout=None) disables httpx's own timeouts: the flow's deadline comes from
    # the server's `timeout`, so a hanging issuer is a 503 after it, not a thread held forever.
    local_issuer.go_down("hang")
    config = Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience, allow_http=True)
    with httpx.Client(timeout=None) as client:  # noqa: S113 - the case under test
        server = ResourceServer(config, http_client=client, timeout=TIMEOUT)
        wait, outcome = timed(lambda: server.authenticate(bearer(local_issuer.mint())))
    assert outcome == "503" and wait < TIMEOUT + MARGIN

    async def main() -> tuple[float, str]:
        async with httpx.AsyncClient(timeout=None) as aclient:  # noqa: S113
            server = ResourceServer(config, async_http_client=aclient, timeout=TIMEOUT)
            start = time.monotonic()
            try:
                await server.aauthenticate(bearer(local_issuer.mint()))
            except UpstreamUnavailableError:
                return time.monotonic() - start, "503"
            return time.monotonic() - start, "ok"

    wait, outcome = asyncio.run(main())
    assert outcome == "503" and wait < TIMEOUT + MARGIN
