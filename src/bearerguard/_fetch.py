"""The only module that performs I/O: two drivers that carry out a flow's fetches over httpx.

`run_sync` drives a flow with an `httpx.Client`, `run_async` with an `httpx.AsyncClient`. Both
turn every transport outcome into a plain `Outcome`, so the core never sees an httpx exception.
Bodies are read up to `MAX_DOCUMENT_BYTES`; every request has the client's explicit timeouts.
"""

from __future__ import annotations

import httpx

from ._flow import MAX_DOCUMENT_BYTES, Fetch, FetchFailed, Flow, Outcome, T, to_outcome

DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
_ACCEPT_JSON = {"accept": "application/json"}
_TOO_LARGE = FetchFailed("response body too large")


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


def _request(client: httpx.Client | httpx.AsyncClient, fetch: Fetch) -> httpx.Request:
    return client.build_request(
        fetch.method,
        fetch.url,
        headers=_ACCEPT_JSON | dict(fetch.headers),
        data=dict(fetch.form) if fetch.form is not None else None,
    )


def _perform(client: httpx.Client, fetch: Fetch) -> Outcome:
    try:
        response = client.send(_request(client, fetch), stream=True)
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
    try:
        response = await client.send(_request(client, fetch), stream=True)
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
