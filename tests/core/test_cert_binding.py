"""Certificate-bound access tokens (RFC 8705 §3) through the server, on both twins and whatever
the DPoP mode: a token whose `cnf` names a client certificate's thumbprint is accepted only with
that certificate, on a cache miss and on every hit; a bare token or header carries none; the
header-only fast path never serves a bound token. Certificates come from
`bearerguard.testing.client_certificate`, whose thumbprint is computed without bearerguard."""

from __future__ import annotations

from typing import Any

import pytest

from bearerguard import (
    AccessToken,
    BearerError,
    Credentials,
    Introspection,
    InvalidTokenError,
    Reason,
    ResourceServer,
)
from bearerguard.events import Event, TokenAccepted, TokenRefused
from bearerguard.testing import ClientCertificate, DPoPKey, LocalIssuer, client_certificate

from ..conftest import Twin

URL = "https://api.test/orders"
CERT, OTHER = client_certificate(), client_certificate("thief")
MODES = pytest.mark.parametrize("mode", ["off", "allowed"])


def bearer(token: str, certificate: str | None) -> Credentials:
    return Credentials("Bearer", token, "GET", URL, (), certificate)


def forms(cert: ClientCertificate) -> list[str]:
    """Each form a server or proxy passes a client certificate on in."""
    return [cert.pem, cert.escaped_pem(), cert.xfcc(), cert.xfcc(cert=False), cert.xfcc(hash=False)]


def refusal(twin: Twin, server: ResourceServer, credentials: Credentials) -> BearerError:
    with pytest.raises(InvalidTokenError) as caught:
        twin.verify_credentials(server, credentials)
    return caught.value


@MODES
def test_a_bound_token_is_accepted_with_its_certificate_in_every_form(
    local_issuer: LocalIssuer, twin: Twin, mode: str
) -> None:
    server = ResourceServer(local_issuer.issuer_config(), dpop=mode)  # type: ignore[arg-type]
    token = local_issuer.mint(x5t_s256=CERT.x5t_s256, scope="orders.read")
    for form in forms(CERT) * 2:  # a miss, then hits: each checked against its request
        access = twin.verify_credentials(server, bearer(token, form))
        assert access.scopes == {"orders.read"}


@MODES
@pytest.mark.parametrize("cached", [False, True])
def test_a_stolen_bound_token_is_refused_without_its_certificate(
    local_issuer: LocalIssuer, twin: Twin, mode: str, cached: bool
) -> None:
    server = ResourceServer(local_issuer.issuer_config(), dpop=mode)  # type: ignore[arg-type]
    token = local_issuer.mint(x5t_s256=CERT.x5t_s256)
    if cached:  # its owner used it first: the thief's request is a verified-token cache hit
        twin.verify_credentials(server, bearer(token, CERT.pem))
    for presented in [None, *forms(OTHER)]:
        assert refusal(twin, server, bearer(token, presented)).reason is Reason.CERT_BINDING
    for garbage in ["", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "x"]:
        assert refusal(twin, server, bearer(token, garbage)).reason is Reason.CERT_MALFORMED
    for call in (twin.verify, lambda s, t: twin.authenticate(s, f"Bearer {t}")):
        with pytest.raises(InvalidTokenError) as caught:  # no certificate with a bare token
            call(server, token)
        assert caught.value.reason is Reason.CERT_BINDING


@MODES
def test_the_fast_path_never_serves_a_bound_token(
    local_issuer: LocalIssuer, twin: Twin, mode: str
) -> None:
    server = ResourceServer(local_issuer.issuer_config(), dpop=mode)  # type: ignore[arg-type]
    bound = local_issuer.mint(x5t_s256=CERT.x5t_s256)
    unbound = local_issuer.mint()
    for _ in range(2):  # cached, then promoted to the main segment by a hit
        twin.verify_credentials(server, bearer(bound, CERT.pem))
        twin.verify_credentials(server, bearer(unbound, None))
    assert server._cached(f"Bearer {bound}") is None  # it would be, for anyone
    assert server._cached(f"Bearer {unbound}") is not None


@pytest.mark.parametrize("dpop_mode", ["off", "allowed"])
def test_a_bound_refused_hit_is_reported_refused_only(
    local_issuer: LocalIssuer, twin: Twin, dpop_mode: str
) -> None:
    events: list[Event] = []
    server = ResourceServer(local_issuer.issuer_config(), dpop=dpop_mode)  # type: ignore[arg-type]
    server.events.subscribe(events.append, TokenAccepted, TokenRefused, hits=True)
    token = local_issuer.mint(x5t_s256=CERT.x5t_s256)
    refusal(twin, server, bearer(token, None))  # a miss: refused, not reported accepted
    twin.verify_credentials(server, bearer(token, CERT.pem))  # a hit
    refusal(twin, server, bearer(token, OTHER.pem))  # a hit, refused
    kinds = [(type(e).__name__, getattr(e, "cached", None)) for e in events]
    assert kinds == [("TokenRefused", None), ("TokenAccepted", True), ("TokenRefused", None)]


@pytest.mark.parametrize("dpop_mode", ["off", "allowed"])
def test_an_introspected_bound_token_needs_its_certificate(
    local_issuer: LocalIssuer, twin: Twin, dpop_mode: str
) -> None:
    introspection = Introspection(
        endpoint=local_issuer.introspection_endpoint,
        client_id="test-client",
        client_secret="test-secret",
    )
    server = ResourceServer(introspection=introspection, dpop=dpop_mode)  # type: ignore[arg-type]
    token = local_issuer.mint_opaque(x5t_s256=CERT.x5t_s256, scope="orders.read")
    assert twin.verify_credentials(server, bearer(token, CERT.xfcc())).scopes == {"orders.read"}
    assert refusal(twin, server, bearer(token, OTHER.pem)).reason is Reason.CERT_BINDING
    assert refusal(twin, server, bearer(token, None)).reason is Reason.CERT_BINDING
    assert server._cached(f"Bearer {token}") is None


@MODES
def test_an_unbound_token_ignores_the_certificate_even_a_malformed_one(
    local_issuer: LocalIssuer, twin: Twin, mode: str
) -> None:
    server = ResourceServer(local_issuer.issuer_config(), dpop=mode)  # type: ignore[arg-type]
    token = local_issuer.mint()
    for certificate in (None, "garbage", OTHER.pem, "garbage"):
        twin.verify_credentials(server, bearer(token, certificate))


def test_dpop_off_refuses_a_dpop_bound_token_through_every_entry_point(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    """With DPoP off a DPoP-bound token can only come as a bearer token (RFC 9449 §7.2): refused
    on its miss and on every hit, as a certificate-bound one without its certificate is, even
    when it is bound to the request's certificate too."""
    server = ResourceServer(local_issuer.issuer_config())
    token = local_issuer.mint(dpop_jkt=DPoPKey().jkt)
    for _ in range(3):  # a miss, then hits through each entry point
        assert refusal(twin, server, bearer(token, None)).reason is Reason.DPOP_DOWNGRADE
        with pytest.raises(InvalidTokenError) as verified:
            twin.verify(server, token)
        assert verified.value.reason is Reason.DPOP_DOWNGRADE
        with pytest.raises(InvalidTokenError) as authenticated:
            twin.authenticate(server, f"Bearer {token}")
        assert authenticated.value.reason is Reason.DPOP_DOWNGRADE
    both = local_issuer.mint(dpop_jkt=DPoPKey().jkt, x5t_s256=CERT.x5t_s256)
    assert refusal(twin, server, bearer(both, CERT.pem)).reason is Reason.DPOP_DOWNGRADE
    assert refusal(twin, server, bearer(both, OTHER.pem)).reason is Reason.DPOP_DOWNGRADE


def test_dpop_checks_both_bindings(local_issuer: LocalIssuer, twin: Twin) -> None:
    key = DPoPKey("ES256")
    server = ResourceServer(local_issuer.issuer_config(), dpop="required")
    token = local_issuer.mint(dpop_jkt=key.jkt, x5t_s256=CERT.x5t_s256)

    def request(certificate: str | None, **kw: Any) -> Credentials:
        proof = key.proof("GET", URL, token)
        return Credentials("DPoP", token, "GET", URL, (proof,), certificate)

    twin.verify_credentials(server, request(CERT.pem))
    exc = refusal(twin, server, request(OTHER.pem))
    assert exc.reason is Reason.CERT_BINDING and exc.scheme == "DPoP"


@MODES
def test_an_unbound_tokens_hits_never_decode_its_claims(
    local_issuer: LocalIssuer, twin: Twin, mode: str
) -> None:
    """Whether a hit is bound is read from the mark set as the token was verified, never from
    its claims (which a cached JWT keeps undecoded until a handler reads them)."""
    server = ResourceServer(local_issuer.issuer_config(), dpop=mode)  # type: ignore[arg-type]
    token = local_issuer.mint(scope="orders.read")
    twin.verify_credentials(server, bearer(token, None))  # the miss: cached, claims undecoded
    for _ in range(2):
        assert server._cached(f"Bearer {token}") is not None
        twin.verify(server, token)
        twin.authenticate(server, f"Bearer {token}")
        access = twin.verify_credentials(server, bearer(token, "junk"))
    raw = vars(AccessToken)["claims"]._slot.__get__(access, AccessToken)  # the stored value
    assert type(raw) is str  # still the token itself: nothing on the hit path decoded it
    assert access.claims["scope"] == "orders.read"
