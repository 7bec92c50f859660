"""The verified-token cache: its entries are the tokens themselves (their deadline and key in
private slots), it serves a token only before its deadline and while its key is published, and
a cached token costs the garbage collector one tracked object (the token: its claims are kept
undecoded until read), and two once its claims are read."""

from __future__ import annotations

import dataclasses
import gc
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from bearerguard import AccessToken, Issuer, ResourceServer
from bearerguard._cache import TokenCache
from bearerguard._jwks import JWKSCache
from bearerguard._keys import Key
from bearerguard._token import freeze, issued
from bearerguard.testing import LocalIssuer

AUDIENCE = "api://orders"
ISSUER = "https://idp.example.test"
NOW = 1_000.0


class _Keys:
    """A JWKS whose keys are published until withdrawn."""

    def __init__(self) -> None:
        self.withdrawn: set[str] = set()

    def is_current(self, kid: str | None, key: object, now: float) -> bool:
        return kid not in self.withdrawn


def _token(n: int) -> AccessToken:
    return issued(
        issuer="https://idp.example.test",
        subject=f"client-{n}",
        client_id=f"client-{n}",
        scopes=frozenset({"orders.read"}),
        claims=freeze({"sub": f"client-{n}"}),
        expires_at=None,
        source="jwt",
    )


_KEY = cast(Key, object())
# One step: ("put", token, ttl or kid), ("get", token, 0), ("tick", 0, seconds), ("withdraw", kid).
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 30), st.integers(1, 30), st.sampled_from("ab")),
        st.tuples(st.just("get"), st.integers(0, 30), st.just(0), st.just("")),
        st.tuples(st.just("tick"), st.just(0), st.integers(0, 10), st.just("")),
        st.tuples(st.just("withdraw"), st.just(0), st.just(0), st.sampled_from("ab")),
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(maxsize=st.integers(0, 20), shared_secret=st.booleans(), steps=_steps)
def test_a_token_is_served_only_as_put_before_its_deadline_and_while_its_key_is_published(
    maxsize: int, shared_secret: bool, steps: list[tuple[str, int, int, str]]
) -> None:
    # Oracle: the last token put under each string, its deadline and kid. The cache may have
    # forgotten it; it never serves another object, one past its deadline or of a withdrawn key.
    cache = TokenCache(maxsize)
    keys = _Keys()
    last: dict[str, tuple[AccessToken, float, str]] = {}
    now = NOW

    def clock() -> float:
        return now

    for op, n, amount, kid in steps:
        name = f"token-{n}"
        if op == "tick":
            now += amount
        elif op == "withdraw":
            keys.withdrawn.add(kid)
        elif op == "put":
            access = _token(n)
            jwks = None if shared_secret else cast(JWKSCache, keys)
            cache.put_token(
                name, access, deadline=now + amount, keys=jwks, kid=kid, key=_KEY, now=now
            )
            last[name] = (access, now + amount, kid)
        else:
            got = cache.get_token(name, clock, clock)
            if got is not None:
                access, deadline, signer = last[name]
                assert got is access and now < deadline
                assert shared_secret or signer not in keys.withdrawn
        assert len(cache) <= maxsize


def test_the_cache_slots_are_not_fields() -> None:
    access = _token(1)
    cache = TokenCache(10)
    cache.put_token("t", access, deadline=NOW + 60, keys=None, kid=None, key=_KEY, now=NOW)
    assert cache.get_token("t", lambda: NOW, lambda: NOW) is access
    assert access == _token(1)  # the slots are not compared...
    assert "_deadline" not in repr(access)  # ...nor shown
    assert [f.name for f in dataclasses.fields(AccessToken)] == [
        "issuer", "subject", "client_id", "scopes", "claims", "expires_at", "source",
    ]  # fmt: skip
    assert not hasattr(dataclasses.replace(access), "_deadline")  # nor copied


def test_a_cached_token_is_one_object_for_the_garbage_collector_until_its_claims_are_read() -> None:
    issuer = LocalIssuer(algorithms=("HS256",), audience=AUDIENCE)  # minting needs no server
    config = Issuer(
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["HS256"],
        shared_secret=issuer.shared_secret(),
    )
    tokens = [issuer.mint(issuer=ISSUER, alg="HS256", scope="orders.read") for _ in range(501)]
    server = ResourceServer(config)
    server.verify(tokens.pop())  # lazy imports, the shared scope set: not counted
    gc.collect()
    before = len(gc.get_objects())
    kept: list[Any] = [server.verify(token) for token in tokens]
    gc.collect()
    per_entry = (len(gc.get_objects()) - before) / len(tokens)
    assert len(server._tokens) == len(tokens) + 1
    assert per_entry <= 1.02  # the token; nothing wraps the entry, no claims decoded yet
    for access in kept:
        assert access.claims["scope"] == "orders.read"
    del kept
    gc.collect()
    per_entry = (len(gc.get_objects()) - before) / len(tokens)
    assert per_entry <= 2.02  # and its read-only claims, once read
