"""The bound on introspection calls, pure on a fake timer; its configuration; and which tokens
may reach the authorization server at all (a JWS never, unless asked for)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bearerguard import (
    ConfigurationError,
    Introspection,
    InvalidTokenError,
    Issuer,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard._env import introspection_from_env
from bearerguard._introspection import Introspector
from bearerguard._jose import looks_like_jws, parse
from bearerguard._limit import CallLimit

from ..conftest import FakeClock

ENDPOINT = "https://idp.test/oauth2/introspect"


def limit(clock: FakeClock, concurrent: int = 3, per_second: float = 4) -> CallLimit:
    return CallLimit(
        "introspection", concurrent=concurrent, per_second=per_second, timer=clock.monotonic
    )


def refused(bound: CallLimit) -> UpstreamUnavailableError:
    with pytest.raises(UpstreamUnavailableError) as info:
        bound.acquire()
    return info.value


def test_rate_is_a_bucket_of_one_second(clock: FakeClock) -> None:
    bound = limit(clock, concurrent=100, per_second=4)
    for _ in range(4):
        with bound.slot():
            pass
    assert refused(bound).retry_after == 1.0
    clock.advance(0.25)  # one call's worth
    with bound.slot():
        pass
    assert refused(bound).retry_after == 1.0
    clock.advance(3600)  # idle: never more than one second's worth
    for _ in range(4):
        bound.acquire()
    refused(bound)


def test_retry_after_is_when_the_bucket_has_a_call_again(clock: FakeClock) -> None:
    bound = limit(clock, concurrent=100, per_second=0.1)  # one call every ten seconds
    bound.acquire()
    bound.release()
    assert refused(bound).retry_after == 10.0
    clock.advance(7.5)
    assert refused(bound).retry_after == 3.0  # 2.5 s, rounded up: Retry-After is whole seconds


def test_concurrency_counts_calls_in_flight(clock: FakeClock) -> None:
    bound = limit(clock, concurrent=2, per_second=1_000)
    bound.acquire()
    with bound.slot():
        assert bound.in_flight == 2
        assert refused(bound).retry_after == 1.0
    assert bound.in_flight == 1
    with pytest.raises(RuntimeError), bound.slot():  # a failed call gives its slot back
        raise RuntimeError("the call failed")
    assert bound.in_flight == 1
    bound.release()
    assert bound.in_flight == 0


def test_refusals_are_logged_once_per_episode(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    bound = limit(clock, concurrent=1, per_second=1_000)
    bound.acquire()
    with caplog.at_level(logging.WARNING, logger="bearerguard.introspection"):
        for _ in range(100):
            refused(bound)
        bound.release()
        with bound.slot():
            refused(bound)
    assert [r.getMessage() for r in caplog.records] == [
        "introspection: over max_concurrent_calls=1; tokens not in the cache get 503 until "
        "calls are free"
    ] * 2


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"max_concurrent_calls": 0}, "max_concurrent_calls"),
        ({"max_concurrent_calls": 2.5}, "max_concurrent_calls"),
        ({"max_concurrent_calls": True}, "max_concurrent_calls"),
        ({"max_calls_per_second": 0}, "max_calls_per_second"),
        ({"max_calls_per_second": -1}, "max_calls_per_second"),
        ({"max_calls_per_second": 1e-320}, "max_calls_per_second"),  # Retry-After would overflow
        ({"max_calls_per_second": float("nan")}, "max_calls_per_second"),
        ({"max_calls_per_second": float("inf")}, "max_calls_per_second"),
        ({"max_calls_per_second": "50"}, "max_calls_per_second"),
    ],
)
def test_bounds_are_checked_at_construction(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Introspection(endpoint=ENDPOINT, client_id="c", client_secret="s", **kw)
    assert info.value.field == field


def test_bounds_defaults_and_env() -> None:
    config = Introspection(endpoint=ENDPOINT, client_id="c", client_secret="s")
    assert (config.max_concurrent_calls, config.max_calls_per_second) == (20, 50.0)
    assert (config.introspect_jwts, config.introspect_foreign_jwts) == (False, False)
    env = {
        "BEARERGUARD_INTROSPECTION_ENDPOINT": ENDPOINT,
        "BEARERGUARD_INTROSPECTION_CLIENT_ID": "c",
        "BEARERGUARD_INTROSPECTION_CLIENT_SECRET": "s",
        "BEARERGUARD_INTROSPECTION_MAX_CONCURRENT_CALLS": "8",
        "BEARERGUARD_INTROSPECTION_MAX_CALLS_PER_SECOND": "12.5",
        "BEARERGUARD_INTROSPECTION_INTROSPECT_FOREIGN_JWTS": "true",
    }
    from_env = introspection_from_env(env)
    assert from_env is not None
    assert (from_env.max_concurrent_calls, from_env.max_calls_per_second) == (8, 12.5)
    assert from_env.introspect_foreign_jwts is True
    for name, value in (("MAX_CALLS_PER_SECOND", "inf"), ("MAX_CONCURRENT_CALLS", "0")):
        variable = "BEARERGUARD_INTROSPECTION_" + name
        with pytest.raises(ConfigurationError, match=variable):
            introspection_from_env(env | {variable: value})


def test_one_bound_for_the_introspectors_of_one_as() -> None:
    server = ResourceServer(
        Issuer(issuer="https://idp.test", audience="api"),
        introspection=Introspection(
            endpoint=ENDPOINT, client_id="c", client_secret="s", introspect_jwts=True
        ),
    )
    assert server._introspector is not None and server._revoker is not None
    assert server._revoker.limit is server._introspector.limit
    assert Introspector(server._introspector.config).limit is not server._introspector.limit


# -- which tokens may be introspected -----------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_headers = st.dictionaries(st.text(max_size=6), _json_values, max_size=4)


@settings(max_examples=300, deadline=None)
@given(header=_headers, payload=st.binary(max_size=40), signature=st.binary(max_size=40))
def test_anything_shaped_as_a_jws_is_recognised(
    header: dict[str, Any], payload: bytes, signature: bytes
) -> None:
    token = ".".join((_b64(json.dumps(header).encode()), _b64(payload), _b64(signature)))
    assert looks_like_jws(token)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"[A-Za-z0-9\-._~+/]+=*", fullmatch=True))
def test_looks_like_jws_never_raises_and_agrees_with_parse(token: str) -> None:
    shaped = looks_like_jws(token)  # whatever the string: a bool, never an exception
    try:
        parse(token)
    except InvalidTokenError:
        return
    assert shaped  # everything the strict parse accepts is a JWS


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(0, 4))
def test_opaque_tokens_are_not_jws(raw: bytes, dots: int) -> None:
    # Opaque tokens as AS-s issue them, base64 of random bytes, with or without dots: unless the
    # first segment is a JSON object (random bytes never are), no JWS.
    assume(not raw.lstrip(b" \t\r\n").startswith(b"{"))
    body = base64.urlsafe_b64encode(raw).decode()
    assert not looks_like_jws(".".join([body] * (dots + 1)))
    assert not looks_like_jws(".".join([body.rstrip("=")] * (dots + 1)))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_the_server_sends_the_as_only_tokens_that_are_no_jws(token: str) -> None:
    # Oracle: `_prepare` hands a token to the introspector only if it is no JWS at all.
    server = ResourceServer(
        Issuer(issuer="https://idp.test", audience="api"),
        introspection=Introspection(endpoint=ENDPOINT, client_id="c", client_secret="s"),
    )
    try:
        route = server.verifier.prepare(token)
    except InvalidTokenError:
        return
    if isinstance(route, Introspector):
        assert not looks_like_jws(token)
    else:
        assert route[0].config.issuer == "https://idp.test"
