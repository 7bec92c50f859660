"""What every property test shares: the twins on fresh servers, the log, and the oracles.

Servers here never use the network: an HS256 issuer needs no keys fetched, and an issuer with
asymmetric keys fetches its JWKS (or discovery document, or introspection answer) through an
`httpx.MockTransport` that answers with whatever the test generated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from bearerguard import (
    AccessToken,
    BearerGuardError,
    InvalidRequestError,
    InvalidTokenError,
    MissingTokenError,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard._types import ASGIApp

Outcome = AccessToken | BearerGuardError
# The documented outcomes of authenticate(): a token, or one of these (README, "Verifying tokens").
REFUSALS = (MissingTokenError, InvalidRequestError, InvalidTokenError, UpstreamUnavailableError)


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    """One event loop for a module's async calls (examples run one after another)."""
    with start_blocking_portal() as portal:
        yield portal


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def logged() -> Iterator[list[str]]:
    """Every line the `bearerguard` loggers write in the block, at any level."""
    logger, handler = logging.getLogger("bearerguard"), Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def attempt(call: Callable[[], Any]) -> Any:
    """What `call` returns, or the bearerguard exception it raises; any other escapes."""
    try:
        return call()
    except BearerGuardError as exc:
        return exc


def kind(outcome: object) -> tuple[type, object]:
    """An outcome to compare across the twins: the type, and the reason of a refusal."""
    return type(outcome), getattr(outcome, "reason", None)


def both(
    portal: BlockingPortal, make: Callable[[], ResourceServer], method: str, argument: str
) -> tuple[Outcome, Outcome]:
    """`server.<method>(argument)` on a fresh server, and its async twin on another one."""
    sync, asynchronous = make(), make()
    try:
        first = attempt(lambda: getattr(sync, method)(argument))
        second = attempt(lambda: portal.call(getattr(asynchronous, "a" + method), argument))
    finally:
        sync.close()
        portal.call(asynchronous.aclose)
    assert kind(first) == kind(second), (first, second)  # the twins share one logic
    return first, second


def texts_of(outcome: object) -> list[str]:
    """What a refusal could show: its message and every message along its cause chain."""
    texts: list[str] = []
    error: BaseException | None = outcome if isinstance(outcome, BaseException) else None
    while error is not None:
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    return texts


def assert_not_shown(token: str, texts: list[str]) -> None:
    """No text shows the token or any of its longer segments."""
    pieces = [token, *(part for part in token.split(".") if len(part) >= 12)]
    for text in texts:
        for piece in pieces:
            assert piece not in text, (piece, text[:200])


Handler = Callable[[httpx.Request], httpx.Response]


def mocked(handler: Handler) -> dict[str, Any]:
    """`ResourceServer` options whose clients answer every request with `handler`."""
    return {
        "http_client": httpx.Client(transport=httpx.MockTransport(handler)),
        "async_http_client": httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    }


Message = MutableMapping[str, Any]


async def ok_asgi(scope: Message, receive: Any, send: Any) -> None:
    """The app behind a middleware: 200 for whatever it lets through."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def ok_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


def asgi(portal: BlockingPortal, app: ASGIApp, scope: Message) -> list[Message]:
    """The messages `app` sends for one HTTP request with an empty body."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run() -> None:
        await app(scope, receive, send)

    portal.call(run)
    return sent
