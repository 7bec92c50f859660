"""The events seam: what a server reports, to whom, and that a subscriber can never break it."""

from __future__ import annotations

import logging

import pytest

from bearerguard import InvalidTokenError, Issuer, Reason, ResourceServer
from bearerguard._events import (
    Event,
    Events,
    KeysFetched,
    TokenAccepted,
    TokenRefused,
)
from bearerguard.testing import LocalIssuer
from bearerguard.testing._testkit import issuer_config

from ..conftest import Twin


def recorder(events: Events, *kinds: type[Event], hits: bool = False) -> list[Event]:
    seen: list[Event] = []
    events.subscribe(seen.append, *kinds, hits=hits)
    return seen


def test_subscribe_by_kind_and_unsubscribe() -> None:
    events = Events()
    refusals = recorder(events, TokenRefused)
    everything: list[Event] = []
    unsubscribe = events.subscribe(everything.append)
    refused = TokenRefused(InvalidTokenError(Reason.EXPIRED))
    fetched = KeysFetched("https://as", None, "down")
    events.emit(refused)
    events.emit(fetched)
    assert refusals == [refused]
    assert everything == [refused, fetched]
    unsubscribe()
    events.emit(refused)
    assert everything == [refused, fetched]
    assert not events.keys  # an unwatched kind is an empty tuple: what emission sites test


def test_cache_hits_go_only_to_subscribers_that_ask() -> None:
    events = Events()
    misses = recorder(events, TokenAccepted)
    hits = recorder(events, TokenAccepted, hits=True)
    hit = TokenAccepted("jwt", "https://as", "c", True)
    miss = TokenAccepted("jwt", "https://as", "c", False)
    events.emit(hit)
    events.emit(miss)
    assert misses == [miss]
    assert hits == [hit, miss]


def test_unknown_kinds_and_uncallables_are_refused() -> None:
    events = Events()
    with pytest.raises(TypeError):
        events.subscribe(print, int)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        events.subscribe("print")  # type: ignore[arg-type]


def test_a_failing_subscriber_never_fails_the_request(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    server = ResourceServer(issuer_config(local_issuer))
    server.events.subscribe(broken)
    after = recorder(server.events)
    with caplog.at_level(logging.ERROR, logger="bearerguard.events"):
        for _ in range(4):
            with pytest.raises(InvalidTokenError):
                twin.authenticate(server, "Bearer " + local_issuer.mint(expires_in=-600))
        token = twin.authenticate(server, "Bearer " + local_issuer.mint())
    assert token.issuer == local_issuer.issuer
    assert [r.levelname for r in caplog.records].count("ERROR") >= 2  # once with a traceback
    assert sum(r.exc_info is not None for r in caplog.records) == 1  # then counted, no flood
    assert any(isinstance(e, TokenAccepted) for e in after)  # the next subscriber still runs


def test_server_reports_keys_accepted_and_refused(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = ResourceServer(issuer_config(local_issuer))
    seen = recorder(server.events, hits=True)
    token = local_issuer.mint()
    twin.authenticate(server, "Bearer " + token)
    twin.authenticate(server, "Bearer " + token)
    with pytest.raises(InvalidTokenError):
        twin.authenticate(server, "Bearer " + local_issuer.mint(audience="someone-else"))
    kinds = [type(event).__name__ for event in seen]
    assert kinds == ["KeysFetched", "TokenAccepted", "TokenAccepted", "TokenRefused"]
    fetched, miss, hit, refused = seen
    assert isinstance(fetched, KeysFetched) and fetched.error is None
    assert fetched.kids and fetched.previous is None and fetched.duration >= 0
    assert isinstance(miss, TokenAccepted) and not miss.cached
    assert isinstance(hit, TokenAccepted) and hit.cached
    assert isinstance(refused, TokenRefused) and refused.error.reason is Reason.AUDIENCE
    assert refused.seen is not None and refused.seen.source == "jwt"
    assert token not in repr(seen)  # no event carries the token


def test_keys_fetched_reports_a_failure_and_a_rotation(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    server = ResourceServer(issuer_config(local_issuer))
    seen = recorder(server.events, KeysFetched)
    local_issuer.go_down()
    with pytest.raises(Exception):  # noqa: B017, PT011 - a 503, whatever its class
        twin.authenticate(server, "Bearer " + local_issuer.mint())
    local_issuer.come_back()
    twin.authenticate(server, "Bearer " + local_issuer.mint())
    kid = local_issuer.rotate()
    twin.authenticate(server, "Bearer " + local_issuer.mint())
    failed, loaded, rotated = seen
    assert isinstance(failed, KeysFetched) and failed.error is not None and not failed.kids
    assert isinstance(loaded, KeysFetched) and loaded.error is None and loaded.previous is None
    assert isinstance(rotated, KeysFetched) and kid in rotated.kids
    assert rotated.previous is not None and kid not in rotated.previous


def test_a_server_without_the_log_subscriber_logs_no_refusal(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    server = ResourceServer(issuer_config(local_issuer), events=Events())
    with caplog.at_level(logging.DEBUG, logger="bearerguard"), pytest.raises(InvalidTokenError):
        twin.authenticate(server, "Bearer " + local_issuer.mint(expires_in=-600))
    assert not [r for r in caplog.records if r.name == "bearerguard"]


def test_cache_sizes_count_tokens_and_keys(local_issuer: LocalIssuer, twin: Twin) -> None:
    server = ResourceServer(issuer_config(local_issuer))
    assert server.cache_sizes() == {"tokens": 0, "keys": 0}
    for _ in range(3):
        twin.authenticate(server, "Bearer " + local_issuer.mint())
    sizes = server.cache_sizes()
    assert sizes["tokens"] == 3 and sizes["keys"] >= 1


def test_the_log_writes_accepted_tokens_at_debug_only(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    server = ResourceServer(issuer_config(local_issuer))
    with caplog.at_level(logging.INFO, logger="bearerguard"):
        twin.authenticate(server, "Bearer " + local_issuer.mint())
    assert not [r for r in caplog.records if "accepted token" in r.getMessage()]
    with caplog.at_level(logging.DEBUG, logger="bearerguard"):
        twin.authenticate(server, "Bearer " + local_issuer.mint(client_id="c-42"))
    (line,) = [r.getMessage() for r in caplog.records if "accepted token" in r.getMessage()]
    assert "'c-42'" in line and local_issuer.issuer in line


def test_a_server_follows_hit_subscriptions_made_after_it_was_built(
    local_issuer: LocalIssuer,
) -> None:
    # The hit path reads a flag the server keeps (Events.watch), not the emitter: subscribing
    # and unsubscribing later must still reach it.
    server = ResourceServer(issuer_config(local_issuer))
    token = local_issuer.mint()
    server.verify(token)
    hits: list[Event] = []
    unsubscribe = server.events.subscribe(hits.append, TokenAccepted, hits=True)
    server.verify(token)
    unsubscribe()
    server.verify(token)
    assert [type(e).__name__ for e in hits] == ["TokenAccepted"]
    assert isinstance(hits[0], TokenAccepted) and hits[0].cached


def test_watchers_do_not_keep_a_server_alive() -> None:
    import gc

    events = Events()
    server = ResourceServer(Issuer(issuer="https://i.test", audience="a"), events=events)
    del server
    gc.collect()
    events.subscribe(print, TokenAccepted, hits=True)  # the dead watcher is dropped, not called
    assert events._watchers == []
