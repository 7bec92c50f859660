"""Hostile input against real servers on 127.0.0.1 (issue 13): never a 500.

A token whose JSON holds a huge integer or is nested too deep is a 401, whoever signed it; an
introspection answer nested too deep is a 503 (the AS is at fault); a malformed JWK costs only
itself: the good keys of the same JWKS keep working and a rotation in it is seen. Each through
both twins, the ASGI middleware under uvicorn, and the WSGI middleware.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bearerguard import (
    Introspection,
    InvalidTokenError,
    Issuer,
    JWKSPolicy,
    Reason,
    ResourceServer,
    UpstreamUnavailableError,
)
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.testing import LocalIssuer
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from ..conftest import FakeClock, Twin
from ..helpers import dumps, generate, sign_raw
from ..integrations.conftest import wsgi_caller
from ..integrations.mcp_support import free_port, serve

HUGE = b"9" * 4301  # one digit past the interpreter's integer-string conversion limit
KEY = generate("RS256")


def nested(depth: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    return opening * depth + b"1" + closing * depth


def signed(issuer: LocalIssuer, extra_claims: bytes, extra_header: bytes = b"") -> str:
    """A token the issuer really signed, with raw JSON members added to header and claims."""
    kid = issuer.kid("RS256")
    now = int(time.time())
    claims = {"iss": issuer.issuer, "aud": issuer.audience, "exp": now + 300, "sub": "client"}
    header = dumps({"alg": "RS256", "kid": kid})
    if extra_header:
        header = header[:-1] + b"," + extra_header + b"}"
    payload = dumps(claims)[:-1] + b"," + extra_claims + b"}"
    return sign_raw(header, payload, issuer.private_key(kid), "RS256")


HOSTILE: dict[str, Callable[[LocalIssuer], str]] = {
    "huge integer in a claim": lambda i: signed(i, b'"n":' + HUGE),
    "huge negative integer in an array": lambda i: signed(i, b'"n":[1,-' + HUGE + b"]"),
    "huge integer in the header": lambda i: signed(i, b'"n":1', b'"n":' + HUGE),
    "claim nested 500 deep": lambda i: signed(i, b'"deep":' + nested(500)),
    "claim nested 950 deep": lambda i: signed(i, b'"deep":' + nested(950)),
    "objects nested 500 deep": lambda i: signed(i, b'"deep":' + nested(500, b'{"a":', b"}")),
    "claim nested 65 deep": lambda i: signed(i, b'"deep":' + nested(64)),  # one past the bound
}


def server_for(issuer: LocalIssuer, **kw: Any) -> ResourceServer:
    return ResourceServer(Issuer(issuer=issuer.issuer, audience=issuer.audience, **kw))


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_tokens_are_invalid_through_both_twins(
    local_issuer: LocalIssuer, twin: Twin, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = HOSTILE[case](local_issuer)
    assert len(token) <= 8192  # all of them fit under the default size cap
    server = server_for(local_issuer)
    with (
        caplog.at_level(logging.DEBUG, logger="bearerguard"),
        pytest.raises(InvalidTokenError) as refused,
    ):
        twin.authenticate(server, "Bearer " + token)
    assert refused.value.reason is Reason.MALFORMED
    assert local_issuer.count() == 0  # refused before any key was fetched
    for text in (caplog.text, str(refused.value), str(refused.value.__cause__)):
        assert all(segment not in text for segment in token.split("."))


def test_the_deepest_claim_the_parser_reads_is_accepted(
    local_issuer: LocalIssuer, twin: Twin
) -> None:
    token = signed(local_issuer, b'"deep":' + nested(63))  # 1 (the claims) + 63 = the bound
    deep = twin.authenticate(server_for(local_issuer), "Bearer " + token).claims["deep"]
    for _ in range(62):
        deep = deep[0]
    assert deep == (1,)


def asgi_app(scope: Any, receive: Any, send: Any) -> Any:
    async def app() -> None:
        if scope["type"] == "lifespan":
            for step in ("startup", "shutdown"):
                await receive()
                await send({"type": f"lifespan.{step}.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app()


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


def over_http(server: ResourceServer, tokens: list[str]) -> list[tuple[int, str | None]]:
    """Status and WWW-Authenticate for each token: ASGI under uvicorn, then WSGI."""
    answers = []
    with (
        serve(BearerAuthMiddleware(asgi_app, server), free_port()) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        for token in tokens:
            response = client.get("/", headers={"authorization": f"Bearer {token}"})
            answers.append((response.status_code, response.headers.get("www-authenticate")))
            assert token[-16:] not in response.text
    call = wsgi_caller(BearerAuthWSGIMiddleware(wsgi_app, server))
    for token in tokens:
        answer = call("/", [f"Bearer {token}"])
        answers.append((answer.status, answer.headers.get("www-authenticate")))
    server.close()
    return answers


def test_hostile_tokens_are_401_from_both_middlewares(local_issuer: LocalIssuer) -> None:
    tokens = [make(local_issuer) for make in HOSTILE.values()]
    malformed = 'Bearer error="invalid_token", error_description="The access token is malformed."'
    assert over_http(server_for(local_issuer), tokens) == [(401, malformed)] * 2 * len(tokens)


# -- introspection answers: the AS's fault, so 503 ---------------------------------------------


def introspecting(issuer: LocalIssuer) -> ResourceServer:
    return ResourceServer(
        introspection=Introspection(
            endpoint=issuer.introspection_endpoint,
            client_id="test-client",
            client_secret="test-secret",
        )
    )


DEEP = "JSON nested more than 64 deep"


def answer_with(member: bytes) -> bytes:
    exp = int(time.time()) + 300
    return b'{"active":true,"client_id":"c","exp":%d,"x":%s}' % (exp, member)


@pytest.mark.parametrize(
    ("member", "why"),
    [
        pytest.param(nested(450), DEEP, id="450-deep"),
        pytest.param(nested(950, b'{"a":', b"}"), DEEP, id="950-deep-objects"),
        pytest.param(nested(64), DEEP, id="65-deep"),
        pytest.param(HUGE, "invalid JSON: a number with too many digits", id="huge-integer"),
    ],
)
def test_an_introspection_answer_that_cannot_be_read_is_503(
    local_issuer: LocalIssuer,
    twin: Twin,
    member: bytes,
    why: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    local_issuer.set_introspection_body(answer_with(member))
    server = introspecting(local_issuer)
    with pytest.raises(UpstreamUnavailableError):
        twin.authenticate(server, "Bearer " + local_issuer.mint_opaque())
    assert f"HTTP 200, body is not a JSON object ({why})" in caplog.text  # why, not the body
    local_issuer.set_introspection_body(answer_with(nested(63)))  # as deep as may be: read
    deep = twin.authenticate(server, "Bearer " + local_issuer.mint_opaque()).claims["x"]
    assert len(deep) == 1


def test_a_too_deep_introspection_answer_is_503_from_both_middlewares(
    local_issuer: LocalIssuer,
) -> None:
    local_issuer.set_introspection_body(answer_with(nested(500)))
    answers = over_http(introspecting(local_issuer), [local_issuer.mint_opaque()])
    assert [status for status, _ in answers] == [503, 503]


# -- one malformed JWK costs only itself -------------------------------------------------------

BAD_KEYS = [
    pytest.param({"kty": ["RSA"], "kid": "bad", "n": "AQAB", "e": "AQAB"}, id="kty-list"),
    pytest.param({"kty": "RSA", "kid": "bad", "alg": ["RS256"]}, id="alg-list"),
    pytest.param({"kty": "OKP", "kid": "bad", "crv": ["Ed25519"], "x": "AA"}, id="crv-list"),
    pytest.param({"kty": "EC", "kid": "bad", "crv": {"P-256": 1}}, id="crv-object"),
    pytest.param({"kty": {"RSA": 1}, "kid": ["bad"]}, id="kty-object"),
]


def publish(issuer: LocalIssuer, *extra: dict[str, Any]) -> None:
    issuer.set_jwks_body(json.dumps({"keys": [*extra, *issuer.jwks()["keys"]]}).encode())


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_a_malformed_jwk_leaves_the_good_keys_working_and_rotation_seen(
    local_issuer: LocalIssuer,
    twin: Twin,
    clock: FakeClock,
    bad: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    publish(local_issuer, bad)
    policy = JWKSPolicy(min_refetch_interval=10)
    server = ResourceServer(
        Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience, jwks_policy=policy),
        timer=clock.monotonic,
    )
    with caplog.at_level(logging.INFO, logger="bearerguard.jwks"):
        for alg in ("RS256", "ES256", "EdDSA"):
            twin.authenticate(server, "Bearer " + local_issuer.mint(alg=alg))
    assert local_issuer.count("jwks") == 1
    skipped = [r.getMessage() for r in caplog.records if "skipping JWK" in r.getMessage()]
    assert len(skipped) == 1
    kid = bad["kid"]  # named as the log names untrusted values: a string quoted, else its type
    named = f"kid={kid!r}" if isinstance(kid, str) else f"kid=<{type(kid).__name__}>"
    assert named in skipped[0]

    new_kid = local_issuer.rotate("RS256")
    publish(local_issuer, bad)
    clock.advance(11)  # past the refetch cool-down: an unknown kid may fetch again
    token = twin.authenticate(server, "Bearer " + local_issuer.mint(kid=new_kid))
    assert token.subject == "test-client"
    assert local_issuer.count("jwks") == 2


def test_a_jwks_without_one_usable_key_is_503_then_stale_keys_serve(
    local_issuer: LocalIssuer, twin: Twin, clock: FakeClock
) -> None:
    policy = JWKSPolicy(default_ttl=60, min_ttl=60, min_refetch_interval=10, stale_if_error=600)
    config = Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience, jwks_policy=policy)
    bad = [{"kty": ["RSA"], "kid": "a"}, {"kty": "RSA", "alg": ["RS256"], "kid": "b"}]
    local_issuer.set_jwks_body(json.dumps({"keys": bad}).encode())
    server = ResourceServer(config, timer=clock.monotonic)
    with pytest.raises(UpstreamUnavailableError):  # nothing usable yet: the AS's fault
        twin.authenticate(server, "Bearer " + local_issuer.mint())

    local_issuer.set_jwks_body(None)
    clock.advance(11)
    twin.authenticate(server, "Bearer " + local_issuer.mint())  # the real JWKS: fetched
    local_issuer.set_jwks_body(json.dumps({"keys": bad}).encode())
    clock.advance(301)  # past the TTL (max-age 300): fetched again, broken; the last keys serve
    assert twin.authenticate(server, "Bearer " + local_issuer.mint()).subject == "test-client"
    assert local_issuer.count("jwks") == 3
    assert server.status()[0].last_error is not None


# -- metadata documents: a URL that is no URL is the AS's fault --------------------------------


def metadata_app(document: dict[str, Any]) -> Any:
    """An ASGI app serving `document` as the OIDC metadata of the issuer at its own address."""
    body = json.dumps(document).encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            for step in ("startup", "shutdown"):
                await receive()
                await send({"type": f"lifespan.{step}.complete"})
            return
        status = 200 if scope["path"] == "/.well-known/openid-configuration" else 404
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize(
    "url",
    [
        "https://[::1/introspect",  # urllib: Invalid IPv6 URL
        "https://h:x/",  # urllib: the port is not a number
        "https://h/\n",  # httpx: not printable
        "https://xn--a.test/",  # idna: not a valid A-label
    ],
)
def test_a_discovered_url_that_cannot_be_parsed_is_503(twin: Twin, url: str) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    document = {"issuer": issuer, "jwks_uri": url, "introspection_endpoint": url}
    with serve(metadata_app(document), port):
        opaque = ResourceServer(
            introspection=Introspection(issuer=issuer, client_id="c", client_secret="s")
        )
        with pytest.raises(UpstreamUnavailableError):
            twin.authenticate(opaque, "Bearer opaque-token")
        jwt = ResourceServer(Issuer(issuer=issuer, audience="api"))
        token = sign_raw(dumps({"alg": "RS256", "kid": "k"}), dumps({"iss": issuer}), KEY, "RS256")
        with pytest.raises(UpstreamUnavailableError):
            twin.authenticate(jwt, "Bearer " + token)
