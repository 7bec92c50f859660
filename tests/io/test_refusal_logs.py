"""Every refusal's log line says what happened (issue 14), over real HTTP on 127.0.0.1.

What the token names is logged on every refusal, marked unverified until the signature held, cut
and escaped so that a token cannot forge a line or a field; an unknown issuer that nearly names a
configured one gets "did you mean"; introspection refusals name what the AS answered; upstream
failures and key loads carry the same structured fields (`record.bearerguard`).
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bearerguard import (
    BearerError,
    Introspection,
    InvalidTokenError,
    Issuer,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard._logfields import EXTRA
from bearerguard._redact import LIMIT
from bearerguard.testing import LocalIssuer

from ..conftest import Twin

README = (Path(__file__).parents[2] / "README.md").read_text()


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("refused: ")]


def refuse(twin: Twin, server: ResourceServer, token: str) -> BaseException:
    with pytest.raises((BearerError, UpstreamUnavailableError)) as refused:
        twin.authenticate(server, "Bearer " + token)
    return refused.value


def fields(record: logging.LogRecord) -> dict[str, Any]:
    value = getattr(record, EXTRA)
    assert isinstance(value, dict)
    return value


# -- refusals before the key is looked up name what the token names -------------------------


@pytest.mark.parametrize(
    ("case", "reason"),
    [("issuer", "UNKNOWN_ISSUER"), ("alg", "ALGORITHM"), ("typ", "TYPE")],
)
def test_refusals_before_key_lookup_name_iss_kid_alg_and_client_as_unverified(
    local_issuer: LocalIssuer,
    twin: Twin,
    caplog: pytest.LogCaptureFixture,
    case: str,
    reason: str,
) -> None:
    options: dict[str, Any] = {"algorithms": ["ES256"]} if case == "alg" else {}
    server = ResourceServer(
        Issuer(
            issuer=local_issuer.issuer,
            audience=local_issuer.audience,
            rfc9068=case == "typ",
            **options,
        )
    )
    iss = "https://elsewhere.example" if case == "issuer" else local_issuer.issuer
    token = local_issuer.mint(issuer=iss, typ="JWT", client_id="orders-client")
    kid = local_issuer.kid()
    with caplog.at_level(logging.INFO, "bearerguard"):
        refuse(twin, server, token)
    (record,) = refusals(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"refused: {reason} iss={iss!r} kid={kid!r} alg='RS256' client_id='orders-client' "
        "(unverified)"
    )
    assert fields(record) | {"retry_after": None} == {
        "event": "refused",
        "reason": reason,
        "status": 401,
        "error": "invalid_token",
        "source": "unverified jwt",
        "verified": False,
        "issuer": iss,
        "kid": kid,
        "alg": "RS256",
        "client_id": "orders-client",
        "required": None,
        "did_you_mean": None,
        "upstream": None,
        "detail": None,
        "retry_after": None,
    }
    assert token not in caplog.text
    assert token.rsplit(".", 1)[1] not in caplog.text  # nor its signature
    assert local_issuer.count() == 0  # refused before any key was looked up


def test_a_refusal_after_the_signature_held_is_not_marked_unverified(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience))
    with caplog.at_level(logging.INFO, "bearerguard"):
        refuse(twin, server, local_issuer.mint(expires_in=-600))
        bad = local_issuer.mint()
        refuse(twin, server, bad[:-4] + ("AAAA" if not bad.endswith("AAAA") else "BBBB"))
    expired, forged = refusals(caplog)
    assert expired.getMessage().startswith(f"refused: EXPIRED iss={local_issuer.issuer!r} kid=")
    assert not expired.getMessage().endswith("(unverified)")
    assert fields(expired)["verified"] is True
    assert forged.getMessage().startswith("refused: BAD_SIGNATURE ")
    assert forged.getMessage().endswith("(unverified)")
    assert fields(forged)["verified"] is False


def test_a_malformed_token_says_what_is_wrong_with_its_form(
    twin: Twin, local_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience))
    with caplog.at_level(logging.INFO, "bearerguard"):
        refuse(twin, server, "abc.def")
        refuse(twin, server, local_issuer.mint(headers={"jku": "https://evil.example/jwks"}))
    malformed, header = refusals(caplog)
    assert malformed.getMessage() == "refused: MALFORMED (not three non-empty base64url segments)"
    assert fields(malformed)["detail"] == "not three non-empty base64url segments"
    named = f"refused: UNSUPPORTED_HEADER iss={local_issuer.issuer!r} "
    assert header.getMessage().startswith(named)
    assert header.getMessage().endswith("(refused: jku; unverified)")
    assert "evil.example" not in caplog.text  # the header's value is not echoed


# -- did you mean ---------------------------------------------------------------------------

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_V1 = f"https://sts.windows.net/{TENANT}/"
ENTRA_V2 = f"https://login.microsoftonline.com/{TENANT}/v2.0"


@pytest.mark.parametrize(
    "case",
    [
        ("https://idp.example/tenant", "https://idp.example/tenant/", True),  # trailing slash
        ("https://idp.example/tenant/", "https://idp.example/tenant", True),
        ("https://idp.example/tenant", "http://idp.example/tenant", True),  # scheme
        ("https://idp.example/Tenant", "https://IDP.example/tenant", True),  # case
        (ENTRA_V2, ENTRA_V1, True),  # Entra v1 token, v2 configured
        (ENTRA_V1, ENTRA_V2, True),
        (ENTRA_V2, f"https://sts.windows.net/{TENANT[:-1]}0/", False),  # another tenant
        ("https://idp.example/tenant", "https://idp.example/other", False),
    ],
)
def test_an_unknown_issuer_gets_the_configured_one_it_nearly_names(
    local_issuer: LocalIssuer,
    twin: Twin,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, str, bool],
) -> None:
    configured, iss, hint = case
    server = ResourceServer(
        [
            Issuer(issuer=configured, audience="api://x", jwks_uri=local_issuer.jwks_uri),
            Issuer(issuer=local_issuer.issuer, audience="api://x"),
        ]
    )
    with caplog.at_level(logging.INFO, "bearerguard"):
        refuse(twin, server, local_issuer.mint(issuer=iss))
    (record,) = refusals(caplog)
    assert local_issuer.count() == 0  # an unknown issuer costs no request, hint or not
    if hint:
        assert record.getMessage().endswith(f"(unverified; did you mean {configured!r}?)")
        assert fields(record)["did_you_mean"] == configured
    else:
        assert "did you mean" not in record.getMessage()
        assert fields(record)["did_you_mean"] is None


@pytest.mark.parametrize("iss", ["http://[x", "https://a\uff03b/", "https://x]/t"])
def test_an_unknown_issuer_that_is_no_url_is_401_not_an_exception(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture, iss: str
) -> None:
    # urlsplit raises ValueError for these; "did you mean" must not turn that into a 500.
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience))
    with caplog.at_level(logging.INFO, "bearerguard"):
        refused = refuse(twin, server, local_issuer.mint(issuer=iss))
    assert isinstance(refused, InvalidTokenError)
    assert refused.reason.name == "UNKNOWN_ISSUER"
    (record,) = refusals(caplog)
    assert fields(record)["did_you_mean"] is None
    assert local_issuer.count() == 0


# -- untrusted values cannot forge a line or a field ----------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
HOSTILE_TEXT = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(["\n", "\r", "\x1b", "\u2028", "\u0085", "'", '"', "\\", "\u202e"]),
    max_size=300,
)


class Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def minter() -> Iterator[LocalIssuer]:
    with LocalIssuer(algorithms=("HS256",)) as issuer:  # HS256: minting costs nothing
        yield issuer


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(iss=HOSTILE_TEXT | JSON, kid=HOSTILE_TEXT, client=HOSTILE_TEXT)
def test_untrusted_values_are_logged_on_one_line_cut_and_escaped(
    minter: LocalIssuer, iss: Any, kid: str, client: str
) -> None:
    server = ResourceServer(Issuer(issuer="https://configured.example", audience="api://x"))
    token = minter.mint(issuer=iss, headers={"kid": kid}, client_id=client)
    records: list[logging.LogRecord] = []
    handler = Collect(records)
    logger = logging.getLogger("bearerguard")
    logger.addHandler(handler)
    try:
        with pytest.raises(InvalidTokenError):
            server.verify(token)
    finally:
        logger.removeHandler(handler)
    (record,) = records
    message = record.getMessage()
    assert message.isprintable()  # no newline, carriage return, escape or line separator
    assert len(message) < 6 * LIMIT * 4 + 200  # bounded, whatever the token holds
    assert token not in message
    extra = fields(record)
    json.dumps(extra)  # a JSON formatter can write every field
    for name, value in (("iss", iss), ("kid", kid), ("client_id", client)):
        field = extra["issuer" if name == "iss" else name]
        if value is None:
            assert field is None and f" {name}=None " in message
            continue
        if not isinstance(value, str):  # a number as text, another JSON type by its name
            expected = repr(value)[:LIMIT] if isinstance(value, int | float) else "<list>"
            assert field == expected and f" {name}={expected} " in message
            continue
        cut = value if len(value) <= LIMIT else value[:LIMIT] + "…"
        # The message holds repr(cut): reading it back gives exactly the value, cut.
        match = re.search(rf" {name}=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", message)
        assert match, message
        assert ast.literal_eval(match[1]) == cut
        assert field is not None and field.isprintable()
        if cut.isprintable():
            assert field == cut


# -- introspection refusals name what the AS answered --------------------------------------


def test_introspection_refusals_name_the_client_and_issuer_the_as_answered(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    server = ResourceServer(
        introspection=Introspection(
            endpoint=local_issuer.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
            audience=["api://orders"],
        )
    )
    token = local_issuer.mint_opaque(client_id="billing-client", aud="api://billing")
    with caplog.at_level(logging.INFO, "bearerguard"):
        refuse(twin, server, token)
        refuse(twin, server, token)  # from the negative cache: still named
    assert local_issuer.count("/introspect") == 1
    first, cached = refusals(caplog)
    expected = (
        f"refused: AUDIENCE iss={local_issuer.issuer!r} client_id='billing-client' "
        "(from the introspection answer)"
    )
    assert first.getMessage() == cached.getMessage() == expected
    assert fields(first)["source"] == "introspection"
    assert fields(first)["client_id"] == "billing-client"
    assert "test-secret" not in caplog.text and token not in caplog.text


# -- upstream failures and key loads carry structured fields -------------------------------


def test_an_upstream_failure_names_the_url_redacted(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    jwks = local_issuer.jwks_uri.replace("http://", "http://ops:hunter2@") + "?api_key=k1"
    server = ResourceServer(
        Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience, jwks_uri=jwks)
    )
    local_issuer.go_down()
    with caplog.at_level(logging.INFO, "bearerguard"):
        refuse(twin, server, local_issuer.mint())
    shown = local_issuer.jwks_uri.replace("http://", "http://…@") + "?…"
    failed = next(r for r in caplog.records if fields(r)["event"] == "keys_failed")
    assert fields(failed) == {
        "event": "keys_failed",
        "issuer": local_issuer.issuer,
        "upstream": shown,
        "error": f"{shown}: HTTP 503, body is not a JSON object",
    }
    (refused,) = refusals(caplog)
    assert f"refused: UPSTREAM iss={local_issuer.issuer!r} " in refused.getMessage()
    assert f"upstream={shown} (unverified)" in refused.getMessage()
    assert fields(refused)["upstream"] == shown
    assert fields(refused)["status"] == 503
    assert fields(refused)["retry_after"] >= 1
    assert "hunter2" not in caplog.text and "k1" not in caplog.text


def test_each_key_load_is_logged_once_at_info_with_its_kids(
    local_issuer_factory: Any, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    from bearerguard import JWKSPolicy

    issuer = local_issuer_factory()
    server = ResourceServer(
        Issuer(
            issuer=issuer.issuer,
            audience=issuer.audience,
            jwks_policy=JWKSPolicy(min_refetch_interval=0),
        )
    )
    first = issuer.kid()
    with caplog.at_level(logging.INFO, "bearerguard"):
        twin.authenticate(server, "Bearer " + issuer.mint())
        twin.authenticate(server, "Bearer " + issuer.mint())  # no load: the keys are fresh
        second = issuer.rotate(keep_old=False)
        twin.authenticate(server, "Bearer " + issuer.mint())
    loads = [r for r in caplog.records if fields(r)["event"] == "keys_loaded"]
    assert [r.levelno for r in loads] == [logging.INFO, logging.INFO]
    assert [r.getMessage() for r in loads] == [
        f"loaded 1 key of issuer {issuer.issuer} from {issuer.jwks_uri}: kids {first!r}",
        f"loaded 1 key of issuer {issuer.issuer} from {issuer.jwks_uri}: kids {second!r}; "
        f"new {second!r}; gone {first!r}",
    ]
    assert fields(loads[1]) == {
        "event": "keys_loaded",
        "issuer": issuer.issuer,
        "upstream": issuer.jwks_uri,
        "kids": [second],
        "added": [second],
        "removed": [first],
    }


# -- the documented field list is the emitted one -------------------------------------------


def documented_fields() -> set[str]:
    section = README.split("\n### Log lines and their fields\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.M))


def test_the_readme_documents_every_refusal_field(
    local_issuer: LocalIssuer, twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience))
    with caplog.at_level(logging.INFO, "bearerguard"):
        refuse(twin, server, local_issuer.mint(issuer="https://other.example"))
        refuse(twin, server, local_issuer.mint(expires_in=-600))
    emitted = {name for record in caplog.records for name in fields(record)}
    assert emitted <= documented_fields()
    assert {"event", "reason", "status", "issuer", "kid", "alg", "client_id"} <= emitted
