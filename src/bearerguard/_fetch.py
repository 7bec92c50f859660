"""The only module that performs I/O: two drivers that carry out a flow's fetches over httpx.

`run_sync` drives a flow with an `httpx.Client`, `run_async` with an `httpx.AsyncClient`. Both
turn every transport outcome into a plain `Outcome`, so the core never sees an httpx exception.
Bodies are read up to `MAX_DOCUMENT_BYTES`; every request has the client's explicit timeouts.
"""

from __future__ import annotations

import asyncio
import threading

import httpx

from ._flow import MAX_DOCUMENT_BYTES, Fetch, FetchFailed, Flow, Outcome, T, to_outcome

DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
_ACCEPT_JSON = {"accept": "application/json"}
_TOO_LARGE = FetchFailed("response body too large")
_INVALID_URL = FetchFailed("InvalidURL")


def run_sync(flow: Flow[T], client: httpx.Client) -> T:
    """Run a flow to its end, performing each fetch with `client`."""
    try:
        fetch = next(flow)
        while True:
            fetch = flow.send(_perform(client, fetch))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(flow: Flow[T], client: httpx.AsyncClient) -> T:
    """Run a flow to its end, performing each fetch with `client`."""
    try:
        fetch = next(flow)
        while True:
            fetch = flow.send(await _aperform(client, fetch))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _request(client: httpx.Client | httpx.AsyncClient, fetch: Fetch) -> httpx.Request | FetchFailed:
    try:
        return client.build_request(
            fetch.method,
            fetch.url,
            headers=_ACCEPT_JSON | dict(fetch.headers),
            data=dict(fetch.form) if fetch.form is not None else None,
        )
    except (httpx.InvalidURL, ValueError):  # also idna's errors: a URL httpx will not send
        return _INVALID_URL  # URLs come from AS metadata too: its fault, so no answer (503)


def _perform(client: httpx.Client, fetch: Fetch) -> Outcome:
    request = _request(client, fetch)
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
        finally:
            response.close()
    except httpx.HTTPError as exc:
        return FetchFailed(type(exc).__name__)
    return to_outcome(response.status_code, response.headers, bytes(body))


async def _aperform(client: httpx.AsyncClient, fetch: Fetch) -> Outcome:
    request = _request(client, fetch)
    if isinstance(request, FetchFailed):
        return request
    try:
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
        self._client, self._owns_client = client, client is None
        self._aclient, self._owns_aclient = async_client, async_client is None
        self._aclient_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, flow: Flow[T]) -> T:
        return run_sync(flow, self._sync_client())

    async def arun(self, flow: Flow[T]) -> T:
        return await run_async(flow, self._async_client())

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
