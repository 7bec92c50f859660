"""DPoP (RFC 9449) through the server: `ResourceServer(dpop=...)` on both twins.

The proof is checked on every request (cache hit or not), the binding after the token, the
replay check last; a bound token is never served as a bearer token, not even by the header-only
fast path; a replay store that cannot answer fails closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from bearerguard import (
    BearerError,
    ConfigurationError,
    Credentials,
    DPoPPolicy,
    Introspection,
    InvalidDPoPProofError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
    ResourceServer,
    UpstreamUnavailableError,
    challenge_for,
)
from bearerguard._errors import DPoPBindingError, DPoPMissingTokenError
from bearerguard._store import MemoryStore, StoreError
from bearerguard.events import Event, TokenAccepted, TokenRefused
from bearerguard.testing import DPoPKey, LocalIssuer

from ..conftest import Twin

URL = "https://api.test/orders?page=2"
HTU = "https://api.test/orders"


def proof_jti(credentials: Credentials) -> str:
    return str(jwt.decode(credentials.proofs[0], options={"verify_signature": False})["jti"])


def dpop(token: str, key: DPoPKey, *, method: str = "GET", **claims: Any) -> Credentials:
    proof = key.proof(method, HTU, token, **claims)
    return Credentials("DPoP", token, "GET", URL, (proof,))


def server_for(issuer: LocalIssuer, **kw: Any) -> ResourceServer:
    return ResourceServer(issuer.issuer_config(), **{"dpop": "allowed", **kw})


def refused(twin: Twin, server: ResourceServer, credentials: Credentials) -> BearerError:
    with pytest.raises(BearerError) as exc:
        twin.verify_credentials(server, credentials)
    return exc.value


def test_a_bound_token_with_a_fresh_proof_is_accepted_on_every_request(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    key, accepted = DPoPKey("ES256"), list[Event]()
    server = server_for(local_issuer)
    server.events.subscribe(accepted.append, TokenAccepted, hits=True)
    token = local_issuer.mint(dpop_jkt=key.jkt, scope="orders.read")
    for _ in range(3):  # a miss, then cache hits: each with its own proof
        assert twin.verify_credentials(server, dpop(token, key)).scopes == {"orders.read"}
    assert [isinstance(e, TokenAccepted) and e.cached for e in accepted] == [False, True, True]


def test_a_stolen_token_without_its_key_is_refused(local_issuer: LocalIssuer, twin: Twin) -> None:
    key, thief = DPoPKey("ES256"), DPoPKey("ES256")
    server = server_for(local_issuer)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    twin.verify_credentials(server, dpop(token, key))  # cached now
    exc = refused(twin, server, dpop(token, thief))  # the thief's own, valid, proof
    assert isinstance(exc, DPoPBindingError) and exc.reason is Reason.DPOP_BINDING
    exc = refused(twin, server, Credentials("DPoP", token, "GET", URL))  # no proof at all
    assert isinstance(exc, InvalidDPoPProofError) and exc.reason is Reason.DPOP_MISSING


def test_a_request_refused_after_its_token_verified_is_reported_refused_only(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    key, thief, events = DPoPKey("ES256"), DPoPKey("ES256"), list[Event]()
    server = server_for(local_issuer)
    server.events.subscribe(events.append, TokenAccepted, TokenRefused, hits=True)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    refused(twin, server, dpop(token, thief))  # a miss: the token verifies, the binding fails
    refused(twin, server, dpop(token, thief))  # a hit, the same
    proof = dpop(token, key)
    twin.verify_credentials(server, proof)
    refused(twin, server, proof)  # a replay
    kinds = [(type(e).__name__, getattr(e, "cached", None)) for e in events]
    assert kinds == [
        ("TokenRefused", None),
        ("TokenRefused", None),
        ("TokenAccepted", True),
        ("TokenRefused", None),
    ]
    assert [e.error.reason for e in events if isinstance(e, TokenRefused)] == [
        Reason.DPOP_BINDING,
        Reason.DPOP_BINDING,
        Reason.DPOP_REPLAYED,
    ]


def test_a_replayed_proof_is_refused_hit_or_miss(local_issuer: LocalIssuer, twin: Twin) -> None:
    key = DPoPKey("ES256")
    server = server_for(local_issuer)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    credentials = dpop(token, key)
    twin.verify_credentials(server, credentials)
    exc = refused(twin, server, credentials)
    assert isinstance(exc, InvalidDPoPProofError) and exc.reason is Reason.DPOP_REPLAYED


def test_two_servers_sharing_a_store_refuse_each_others_replays(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    key, store = DPoPKey("ES256"), MemoryStore()
    first = server_for(local_issuer, dpop_store=store)
    second = server_for(local_issuer, dpop_store=store)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    credentials = dpop(token, key)
    twin.verify_credentials(first, credentials)
    exc = refused(twin, second, credentials)
    assert isinstance(exc, InvalidDPoPProofError) and exc.reason is Reason.DPOP_REPLAYED
    assert twin.verify_credentials(second, dpop(token, key))  # a new proof is fine


def test_a_proof_refused_for_another_reason_does_not_use_up_its_jti(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    key = DPoPKey("ES256")
    server = server_for(local_issuer)
    token, other = local_issuer.mint(dpop_jkt=key.jkt), local_issuer.mint()
    proof = key.proof("GET", HTU, token)
    exc = refused(twin, server, Credentials("DPoP", other, "GET", URL, (proof,)))
    assert exc.reason is Reason.DPOP_ATH  # made for the other token: refused before replay
    assert twin.verify_credentials(server, Credentials("DPoP", token, "GET", URL, (proof,)))
    # Refused at the binding (a proof for an unbound token): its jti is not used up either.
    proof = key.proof("GET", HTU, other)
    exc = refused(twin, server, Credentials("DPoP", other, "GET", URL, (proof,)))
    assert exc.reason is Reason.DPOP_UNBOUND
    assert server.dpop is not None and len(server._sender.store) == 1  # type: ignore[union-attr, arg-type]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"method": "POST"}, Reason.DPOP_METHOD),
        ({"htu": "https://api.test/invoices"}, Reason.DPOP_URL),
        ({"htu": "https://other.test/orders"}, Reason.DPOP_URL),
        ({"iat": 1}, Reason.DPOP_TOO_OLD),
        ({"ath": "x" * 43}, Reason.DPOP_ATH),
    ],
)
def test_a_proof_for_another_request_is_refused_on_a_hit_too(
    local_issuer: LocalIssuer, twin: Twin, change: dict[str, Any], reason: Reason
) -> None:
    key = DPoPKey("ES256")
    server = server_for(local_issuer)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    twin.verify_credentials(server, dpop(token, key))  # the token is cached
    exc = refused(twin, server, dpop(token, key, **change))
    assert isinstance(exc, InvalidDPoPProofError) and exc.reason is reason
    assert exc.algs == DPoPPolicy().algorithms


def test_a_bound_token_sent_as_bearer_is_refused(local_issuer: LocalIssuer, twin: Twin) -> None:
    key = DPoPKey("ES256")
    server = server_for(local_issuer)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    for _ in range(2):  # before and after the token is cached by a DPoP request
        calls: list[Callable[[], object]] = [
            lambda: twin.verify_credentials(server, Credentials("Bearer", token, "GET", URL)),
            lambda: twin.authenticate(server, "Bearer " + token),
            lambda: twin.verify(server, token),
        ]
        for call in calls:
            with pytest.raises(InvalidTokenError) as exc:
                call()
            assert exc.value.reason is Reason.DPOP_DOWNGRADE
            assert exc.value.scheme == "Bearer"
        twin.verify_credentials(server, dpop(token, key))
        assert server._cached("Bearer " + token) is None  # the fast path never serves it


def test_the_fast_path_serves_unbound_hits_unless_dpop_is_required(
    local_issuer: LocalIssuer,
) -> None:
    token = local_issuer.mint()
    allowed = server_for(local_issuer)
    assert allowed.authenticate("Bearer " + token) is allowed._cached("Bearer " + token)
    required = server_for(local_issuer, dpop="required")
    with pytest.raises(DPoPMissingTokenError) as exc:
        required.authenticate("Bearer " + token)  # Bearer is another scheme here
    assert not exc.value.bearer and exc.value.scheme == "DPoP"
    required.verify_credentials(dpop(local_issuer.mint(dpop_jkt=(key := DPoPKey()).jkt), key))
    assert required._cached("Bearer " + token) is None
    allowed.close()
    required.close()


def test_an_unbound_token_with_the_dpop_scheme_is_refused(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    key = DPoPKey("ES256")
    exc = refused(twin, server_for(local_issuer), dpop(local_issuer.mint(), key))
    assert isinstance(exc, DPoPBindingError) and exc.reason is Reason.DPOP_UNBOUND


def test_a_dpop_request_is_refused_in_the_dpop_scheme_whatever_the_error(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    key, server = DPoPKey("ES256"), server_for(local_issuer)
    expired = local_issuer.mint(dpop_jkt=key.jkt, expires_in=-120)
    exc = refused(twin, server, dpop(expired, key))  # RFC 9449 §7.1: RFC 6750's errors, in DPoP
    assert exc.reason is Reason.EXPIRED and exc.error == "invalid_token"
    assert (exc.scheme, exc.algs) == ("DPoP", DPoPPolicy().algorithms)
    challenge = challenge_for(exc).headers[0][1]
    assert challenge.startswith('DPoP error="invalid_token"') and 'algs="' in challenge
    # The same refusal of a Bearer request stays a Bearer challenge.
    bearer = Credentials("Bearer", local_issuer.mint(expires_in=-120), "GET", URL)
    exc = refused(twin, server, bearer)
    assert exc.reason is Reason.EXPIRED and (exc.scheme, exc.algs) == ("Bearer", ())


def test_without_credentials_both_schemes_are_challenged(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    for header in (None, "Basic dTpw"):
        with pytest.raises(DPoPMissingTokenError) as exc:
            twin.authenticate(server_for(local_issuer), header)
        assert exc.value.bearer and exc.value.algs == DPoPPolicy().algorithms


def test_dpop_off_refuses_a_dpop_bound_token(local_issuer: LocalIssuer, twin: Twin) -> None:
    """A server with DPoP off takes no DPoP request, so a DPoP-bound token can only reach it as
    a bearer token, the downgrade RFC 9449 §7.2 refuses: refused too, on its miss and on its
    cache hit, where a server unaware of DPoP would accept a stolen one."""
    key = DPoPKey("ES256")
    server = ResourceServer(local_issuer.issuer_config())
    token = local_issuer.mint(dpop_jkt=key.jkt)
    with pytest.raises(MissingTokenError) as exc:
        twin.verify_credentials(server, dpop(token, key))  # another scheme
    assert type(exc.value) is MissingTokenError
    for _ in range(2):  # a miss, then the verified-token cache's hit
        with pytest.raises(InvalidTokenError) as downgraded:
            twin.authenticate(server, "Bearer " + token)
        assert downgraded.value.reason is Reason.DPOP_DOWNGRADE
        assert downgraded.value.scheme == "Bearer"  # the only scheme this server speaks
    assert server._tokens.get_token(token, server._clock, server._timer) is not None
    unbound = local_issuer.mint()
    assert twin.authenticate(server, "Bearer " + unbound).claims.get("cnf") is None


def test_dpop_off_refuses_a_binding_it_cannot_check(local_issuer: LocalIssuer, twin: Twin) -> None:
    """A confirmation method bearerguard does not check (here RFC 7800's `jwk`) is refused
    whatever the DPoP mode: the authorization server that bound the token expects a check."""
    server = ResourceServer(local_issuer.issuer_config())
    token = local_issuer.mint(cnf={"jwk": DPoPKey("ES256").jwk})
    with pytest.raises(InvalidTokenError) as exc:
        twin.authenticate(server, "Bearer " + token)
    assert exc.value.reason is Reason.CONFIRMATION


def test_introspected_tokens_are_bound_by_the_answers_cnf(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    key = DPoPKey("ES256")
    server = ResourceServer(
        dpop="allowed",
        introspection=Introspection(
            endpoint=local_issuer.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
        ),
    )
    token = local_issuer.mint_opaque(dpop_jkt=key.jkt)
    assert twin.verify_credentials(server, dpop(token, key)).source == "introspection"
    assert twin.verify_credentials(server, dpop(token, key))  # cached answer, new proof
    exc = refused(twin, server, dpop(token, DPoPKey("ES256")))
    assert exc.reason is Reason.DPOP_BINDING
    with pytest.raises(InvalidTokenError) as downgrade:
        twin.authenticate(server, "Bearer " + token)
    assert downgrade.value.reason is Reason.DPOP_DOWNGRADE


class DownStore(MemoryStore):
    def add(self, key: str, value: bytes, ttl: float) -> bool:
        raise StoreError("down")

    async def aadd(self, key: str, value: bytes, ttl: float) -> bool:
        raise StoreError("down")


def test_a_replay_store_outage_fails_closed_with_503(local_issuer: LocalIssuer, twin: Twin) -> None:
    key = DPoPKey("ES256")
    server = server_for(local_issuer, dpop_store=DownStore())
    token = local_issuer.mint(dpop_jkt=key.jkt)
    with pytest.raises(UpstreamUnavailableError) as exc:
        twin.verify_credentials(server, dpop(token, key))
    assert exc.value.reason is Reason.DPOP_STORE and exc.value.retry_after == 1.0
    assert twin.authenticate(server, "Bearer " + local_issuer.mint())  # Bearer needs no store


def test_the_jti_is_kept_for_the_proofs_lifetime(local_issuer: LocalIssuer) -> None:
    timer = [0.0]
    store = MemoryStore(timer=lambda: timer[0])
    key = DPoPKey("ES256")
    server = server_for(local_issuer, dpop=DPoPPolicy(max_age=30), dpop_store=store)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    proof = key.proof("GET", HTU, token, jti="the-jti")  # iat: now, in whole seconds
    server.verify_credentials(Credentials("DPoP", token, "GET", URL, (proof,)))
    timer[0] = 29.0  # the proof may still be used: its jti is still there
    assert store.get(f"jti:{key.jkt}:the-jti") is not None
    timer[0] = 31.0  # past iat + max_age + the second's margin: the proof is refused anyway
    assert store.get(f"jti:{key.jkt}:the-jti") is None
    server.close()


def test_a_replay_store_over_its_size_never_lets_a_replay_through(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    """More proofs within one proof lifetime than the in-process replay store holds: it evicts
    `jti`s whose proofs are still usable, and a proof as old as those is refused (it cannot be
    told from a replay), never accepted; fresh proofs are accepted once they outlive what was
    evicted. Without the check, the first proof would be accepted again once evicted."""
    now = [time.time()]
    store = MemoryStore(5, timer=lambda: now[0])
    server = server_for(local_issuer, dpop_store=store, clock=lambda: now[0])
    key = DPoPKey("ES256")
    token = local_issuer.mint(dpop_jkt=key.jkt)

    def request() -> Credentials:
        return dpop(token, key, iat=int(now[0]))

    first = request()
    for credentials in (first, *(request() for _ in range(5))):  # all six accepted
        assert twin.verify_credentials(server, credentials).subject is not None
    assert store.get(f"jti:{key.jkt}:{proof_jti(first)}") is None  # evicted, alive
    for replay in (first, request()):  # the evicted proof again, and one as old
        assert refused(twin, server, replay).reason is Reason.DPOP_REPLAY_WINDOW
    now[0] += 2.0  # a fresh proof outlives every evicted one: judged, and new
    fresh = request()
    assert twin.verify_credentials(server, fresh)
    assert refused(twin, server, fresh).reason is Reason.DPOP_REPLAYED
    now[0] += 61.0  # the first proof is too old now in any case
    assert refused(twin, server, first).reason is Reason.DPOP_TOO_OLD
    server.close()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"dpop": "on"}, "dpop"),
        ({"dpop_store": MemoryStore()}, "dpop_store"),
        ({"dpop": "allowed", "dpop_store": object()}, "dpop_store"),
    ],
)
def test_dpop_configuration_errors(
    local_issuer: LocalIssuer, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError) as exc:
        ResourceServer(local_issuer.issuer_config(), **options)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("required", "yes"),
        ("replay_entries", 0),
        ("nonce_secret", b"short"),
        ("nonce_secret", "x" * 32),
    ],
)
def test_dpop_policy_checks_its_new_fields(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as exc:
        DPoPPolicy(**{name: value})  # type: ignore[arg-type]
    assert exc.value.field == name
    assert DPoPPolicy(required=True).required
    assert "nonce_secret" not in repr(DPoPPolicy(nonce_secret=b"s" * 32))
