"""The server's introspection calls, sync and async: the store around `Introspector.flow`.

On a miss of the verified-token cache the server calls `introspect`/`aintrospect`: the answer
(or refusal) kept in the introspector's `Answers` store, else one call per token in this process
(`SingleFlight`) and, with a shared store, one in the fleet (`fleet_run`), within the bound on
calls (`CallLimit`); each call to the AS is reported (`IntrospectionCalled`). See `_answers` for
what is stored, under which keys, and the outage rule.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING

from ._answers import _DEFAULT_CALL, Found, answer
from ._errors import InvalidTokenError, UpstreamUnavailableError
from ._events import Events, IntrospectionCalled
from ._fleet import afleet_run, fleet_run
from ._flow import Fetch, Fetched, Flow, Outcome, describe, recorded
from ._redact import safe_url
from ._token import AccessToken
from ._types import Clock

if TYPE_CHECKING:  # the server imports it: no import level spent here
    from ._introspection import Introspector


def introspect(
    introspector: Introspector,
    token: str,
    key: bytes,
    *,
    run: Callable[[Flow[AccessToken]], AccessToken],
    clock: Clock,
    wait: float | None,
    events: Events,
) -> tuple[AccessToken, float]:
    """The answer for `token` from the store, or from the AS (sync twin; module docs)."""
    answers = introspector.answers
    if (found := answers.get(key, clock())) is not None:
        return answer(found)

    def ask() -> Found:  # within the bound on calls
        with introspector.limit.slot():
            now = clock()
            started = time.time(), perf_counter()
            seen: list[tuple[Fetch, Outcome]] = []
            try:
                result: AccessToken | InvalidTokenError = run(
                    recorded(introspector.flow(token, key, now), seen)
                )
            except InvalidTokenError as exc:
                result = exc
            except UpstreamUnavailableError as exc:
                _report(introspector, events, seen, started, exc)
                raise
            _report(introspector, events, seen, started, result)
        return answers.put(key, result, now)

    def call() -> Found:  # one per token at a time in this process
        if (found := answers.get(key, clock())) is not None:
            return found  # a flight just landed: no call, and no slot taken
        if not answers.shared:
            return ask()
        hold = (wait or _DEFAULT_CALL) + 1.0
        return fleet_run(
            answers.answers,
            answers.key(key),
            cached=lambda: answers.get(key, clock()),
            compute=ask,
            hold=hold,
            wait=hold,
        )

    try:  # a thread queued behind the call waits one deadline at most, as behind a key fetch
        return answer(introspector.flights.run(key, call, wait=wait))
    except TimeoutError:  # a call outlasting its deadline (an AS trickling its bytes)
        raise UpstreamUnavailableError(introspector.limit.what) from None


async def aintrospect(
    introspector: Introspector,
    token: str,
    key: bytes,
    *,
    run: Callable[[Flow[AccessToken]], Awaitable[AccessToken]],
    clock: Clock,
    wait: float | None,
    events: Events,
) -> tuple[AccessToken, float]:
    """The async twin of `introspect`."""
    answers = introspector.answers
    if (found := await answers.aget(key, clock())) is not None:
        return answer(found)

    async def ask() -> Found:
        with introspector.limit.slot():
            now = clock()
            started = time.time(), perf_counter()
            seen: list[tuple[Fetch, Outcome]] = []
            try:
                result: AccessToken | InvalidTokenError = await run(
                    recorded(introspector.flow(token, key, now), seen)
                )
            except InvalidTokenError as exc:
                result = exc
            except UpstreamUnavailableError as exc:
                _report(introspector, events, seen, started, exc)
                raise
            _report(introspector, events, seen, started, result)
        return await answers.aput(key, result, now)

    async def call() -> Found:
        if (found := await answers.aget(key, clock())) is not None:
            return found
        if not answers.shared:
            return await ask()
        hold = (wait or _DEFAULT_CALL) + 1.0

        async def cached() -> Found | None:
            return await answers.aget(key, clock())

        return await afleet_run(
            answers.answers, answers.key(key), cached=cached, compute=ask, hold=hold, wait=hold
        )

    return answer(await introspector.flights.arun(key, call))


def _report(
    introspector: Introspector,
    events: Events,
    seen: list[tuple[Fetch, Outcome]],
    started: tuple[float, float],
    result: AccessToken | InvalidTokenError | UpstreamUnavailableError,
) -> None:
    """Emit `IntrospectionCalled` for a call that reached (or tried to reach) the AS."""
    if not events.introspection or not seen:  # nobody listens, or no request was made
        return
    fetch, outcome = seen[-1]
    status = outcome.status if isinstance(outcome, Fetched) else None
    if isinstance(result, AccessToken):
        kind, error = "active", None
    elif isinstance(result, InvalidTokenError):
        kind, error = "inactive", None
    else:
        kind, error = "error", describe(outcome)
    events.emit(
        IntrospectionCalled(
            introspector.config.issuer,
            safe_url(fetch.url),
            kind,
            status,
            started[0],
            perf_counter() - started[1],
            error,
        )
    )
