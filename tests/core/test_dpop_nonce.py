"""Server nonces for DPoP (RFC 9449 §9): stateless, windowed, shared by a secret."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearerguard import Credentials, DPoPPolicy, ResourceServer
from bearerguard._errors import Reason, UseDPoPNonceError
from bearerguard._nonce import Nonces
from bearerguard.testing import DPoPKey, LocalIssuer

from ..conftest import Twin

SECRET = b"s" * 32
URL = "https://api.test/orders"


def test_a_nonce_lives_one_to_two_windows() -> None:
    nonces = Nonces(SECRET, 60)
    nonce = nonces.issue(6000.0)  # the start of a window
    assert nonces.ok(nonce, 6000.0) and nonces.ok(nonce, 6119.9)
    assert not nonces.ok(nonce, 6120.0)  # two windows on
    assert not nonces.ok(nonce, 5999.0)  # a window before it was issued
    assert Nonces(SECRET, 60).ok(nonce, 6000.0)  # the same secret: another replica
    assert not Nonces(b"t" * 32, 60).ok(nonce, 6000.0)
    assert not Nonces(None, 60).ok(nonce, 6000.0)  # a random secret of its own


@given(st.text(max_size=80))
def test_only_issued_nonces_are_accepted(text: str) -> None:
    nonces = Nonces(SECRET, 60)
    assert nonces.ok(text, 6000.0) == (text in (nonces.issue(6000.0), nonces.issue(5940.0)))


def test_a_proof_without_the_servers_nonce_gets_one_to_retry_with(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    key = DPoPKey("ES256")
    policy = DPoPPolicy(require_nonce=True, nonce_secret=SECRET)
    server = ResourceServer(local_issuer.issuer_config(), dpop=policy)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    for nonce in (None, "0.forged", Nonces(b"t" * 32, 60).issue(0)):
        proof = key.proof("GET", URL, token, nonce=nonce)
        with pytest.raises(UseDPoPNonceError) as exc:
            twin.verify_credentials(server, Credentials("DPoP", token, "GET", URL, (proof,)))
        assert exc.value.reason is Reason.DPOP_NONCE and exc.value.nonce is not None
    proof = key.proof("GET", URL, token, nonce=exc.value.nonce)
    assert twin.verify_credentials(server, Credentials("DPoP", token, "GET", URL, (proof,)))
    # Another replica with the same secret takes it too.
    other = ResourceServer(local_issuer.issuer_config(), dpop=policy)
    proof = key.proof("GET", URL, token, nonce=exc.value.nonce)
    assert twin.verify_credentials(other, Credentials("DPoP", token, "GET", URL, (proof,)))


def test_a_nonce_refusal_is_logged_at_info_without_the_nonce(
    local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bearerguard")
    key = DPoPKey("ES256")
    policy = DPoPPolicy(require_nonce=True, nonce_secret=SECRET)
    token = local_issuer.mint(dpop_jkt=key.jkt)
    with ResourceServer(local_issuer.issuer_config(), dpop=policy) as server:
        proof = key.proof("GET", URL, token)
        with pytest.raises(UseDPoPNonceError) as exc:
            server.verify_credentials(Credentials("DPoP", token, "GET", URL, (proof,)))
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.levelname == "INFO" and "DPOP_NONCE" in record.getMessage()
    assert exc.value.nonce is not None and exc.value.nonce not in caplog.text
    assert proof[-20:] not in caplog.text and token[-20:] not in caplog.text
