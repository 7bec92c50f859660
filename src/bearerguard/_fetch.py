"""The only module that performs I/O: two drivers that carry out a flow's fetches over httpx.

`run_sync` drives a flow with an `httpx.Client`, `run_async` with an `httpx.AsyncClient`. Both
turn every transport outcome into a plain `Outcome`, so the core never sees an httpx exception.
Bodies are read up to `MAX_DOCUMENT_BYTES`; every request has the client's explicit timeouts.

A whole flow (discovery, then the JWKS or the introspection POST) has one deadline: the largest
of the client's timeouts, counted from its first request (an injected client without timeouts
gets the server's `timeout` as its deadline: a flow never waits without a bound). Each request
gets the client's timeouts cut to what is left of it, and a request that cannot start before
the deadline fails without I/O;
the async driver also cancels a request at the deadline, the sync one stops reading a body there.
So a caller waits one upstream deadline at most, however many requests its flow makes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import cast

import httpx

from ._flow import MAX_DOCUMENT_BYTES, Fetch, FetchFailed, Flow, Outcome, T, to_outcome

DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
_ACCEPT_JSON = {"accept": "application/json"}
_TOO_LARGE = FetchFailed("response body too large")
_PAST_DEADLINE = FetchFailed("Timeout: the upstream deadline passed")
_INVALID_URL = FetchFailed("InvalidURL")


def run_sync(flow: Flow[T], client: httpx.Client, budget: float | None = None) -> T:
    """Run a flow to its end, performing each fetch with `client`, within one deadline
    (`budget` seconds when the client's timeouts leave it unbounded)."""
    deadline = _deadline(client.timeout, budget)
    try:
        fetch = next(flow)
        while True:
            fetch = flow.send(_perform(client, fetch, deadline))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(flow: Flow[T], client: httpx.AsyncClient, budget: float | None = None) -> T:
    """Run a flow to its end, performing each fetch with `client`, within one deadline."""
    deadline = _deadline(client.timeout, budget)
    try:
        fetch = next(flow)
        while True:
            fetch = flow.send(await _aperform(client, fetch, deadline))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def upstream_deadline(timeout: httpx.Timeout) -> float | None:
    """The longest a flow may take: the largest of the timeouts (None if one is unbounded)."""
    phases = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    return None if None in phases else max(cast(tuple[float, ...], phases))


def _deadline(timeout: httpx.Timeout, fallback: float | None = None) -> float | None:
    budget = upstream_deadline(timeout)
    budget = fallback if budget is None else budget
    return None if budget is None else time.monotonic() + budget


def _left(deadline: float | None) -> float | None:
    """Seconds left before `deadline` (None: no deadline); 0 when it has passed."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _cut(phase: float | None, left: float) -> float:
    return left if phase is None else min(phase, left)  # an unbounded phase gets what is left


def _request(
    client: httpx.Client | httpx.AsyncClient, fetch: Fetch, left: float | None
) -> httpx.Request | FetchFailed:
    timeout = client.timeout
    if left is not None:  # each phase's timeout, cut to what is left of the flow's deadline
        timeout = httpx.Timeout(
            connect=_cut(timeout.connect, left),
            read=_cut(timeout.read, left),
            write=_cut(timeout.write, left),
            pool=_cut(timeout.pool, left),
        )
    try:
        return client.build_request(
            fetch.method,
            fetch.url,
            headers=_ACCEPT_JSON | dict(fetch.headers),
            data=dict(fetch.form) if fetch.form is not None else None,
            timeout=timeout,
        )
    except (httpx.InvalidURL, ValueError):  # also idna's errors: a URL httpx will not send
        return _INVALID_URL  # URLs come from AS metadata too: its fault, so no answer (503)


def _perform(client: httpx.Client, fetch: Fetch, deadline: float | None) -> Outcome:
    left = _left(deadline)
    if left == 0:
        return _PAST_DEADLINE
    request = _request(client, fetch, left)
    if isinstance(request, FetchFailed):
        return request
    try:
        response = client.send(request, stream=True)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    return _TOO_LARGE
                if _left(deadline) == 0:  # a body trickling in: each read is cut, not the sum
                    return _PAST_DEADLINE
        finally:
            response.close()
    except httpx.HTTPError as exc:
        return FetchFailed(type(exc).__name__)
    return to_outcome(response.status_code, response.headers, bytes(body))


async def _aperform(client: httpx.AsyncClient, fetch: Fetch, deadline: float | None) -> Outcome:
    left = _left(deadline)
    if left == 0:
        return _PAST_DEADLINE
    request = _request(client, fetch, left)
    if isinstance(request, FetchFailed):
        return request
    try:
        async with asyncio.timeout(left):  # the whole exchange, however the bytes trickle in
            response = await client.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        return _TOO_LARGE
            finally:
                await response.aclose()
    except httpx.HTTPError as exc:
        return FetchFailed(type(exc).__name__)
    except TimeoutError:
        return _PAST_DEADLINE
    return to_outcome(response.status_code, response.headers, bytes(body))


class HTTP:
    """Runs flows over the injected httpx clients, or over clients it creates lazily.

    Created clients have explicit timeouts and are closed by `close()`/`aclose()`; injected ones
    (proxies, mTLS, custom CAs, test transports) are left to their owner.
    """

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._timeout = timeout
        # The deadline of a flow over an injected client whose own timeouts are unbounded.
        self._budget = upstream_deadline(timeout)
        self._client, self._owns_client = client, client is None
        self._aclient, self._owns_aclient = async_client, async_client is None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, flow: Flow[T]) -> T:
        return run_sync(flow, self._sync_client(), self._budget)

    def deadline(self) -> float | None:
        """The upstream deadline of the sync client's flows, in seconds (None: unbounded)."""
        budget = upstream_deadline(self._sync_client().timeout)
        return self._budget if budget is None else budget

    async def arun(self, flow: Flow[T]) -> T:
        return await run_async(flow, self._async_client(), self._budget)

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=self._timeout)
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        if not self._owns_aclient:
            return self._aclient  # type: ignore[return-value]
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient_loop is not loop:
            # An AsyncClient's connections belong to one event loop.
            self._aclient, self._aclient_loop = httpx.AsyncClient(timeout=self._timeout), loop
        return self._aclient

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._owns_aclient and self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = self._aclient_loop = None
        self.close()
