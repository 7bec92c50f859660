"""Property tests of what a client sends: the Authorization header and the token in it.

Oracles: every outcome is a token or a documented refusal, the same through both twins; a token
is accepted exactly when an independent reference (the standard library's JSON parser and the
rules the README lists) says it is valid; a token whose signed part or signature changed is never
accepted; nothing shows the token, not refusals, not responses, not log lines.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal
from hypothesis import assume, event, given
from hypothesis import strategies as st

from bearerguard import (
    AccessToken,
    InvalidTokenError,
    Issuer,
    MissingTokenError,
    ResourceServer,
)
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from ..helpers import ASYMMETRIC, Signer, b64
from .conftest import (
    REFUSALS,
    asgi,
    assert_not_shown,
    both,
    logged,
    mocked,
    ok_asgi,
    ok_wsgi,
    texts_of,
)
from .reference import audiences, json_object, scopes_of, thawed, times_ok
from .strategies import encode, objects

ISS = "https://issuer.test"
AUD = "api://orders"
SECRET = b"property-tests-shared-secret-of-64-bytes-for-hs256-and-more...."
NOW = 1_700_000_000
CLAIMS: dict[str, Any] = {
    "iss": ISS,
    "aud": AUD,
    "exp": NOW + 300,
    "iat": NOW - 10,
    "sub": "client",
    "client_id": "client",
    "scope": "orders.read orders.write",
}
REFUSED_HEADERS = {"jku", "jwk", "x5u", "x5c", "crit", "b64", "zip", "enc"}


def hs_server() -> ResourceServer:
    config = Issuer(issuer=ISS, audience=AUD, algorithms=["HS256"], shared_secret=SECRET)
    return ResourceServer(config, clock=lambda: NOW)


def hs256(header: bytes, payload: bytes) -> str:
    signing_input = f"{b64(header)}.{b64(payload)}"
    mac = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


VALID = hs256(b'{"alg":"HS256","typ":"JWT"}', json.dumps(CLAIMS).encode())


def reference(token: str) -> dict[str, Any] | None:
    """The claims of an HS256 token valid at NOW for (ISS, AUD), or None if it is not."""
    if len(token) > 8192 or token.count(".") != 2:
        return None
    try:
        parts = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")]
    except ValueError:
        return None
    if [b64(p) for p in parts] != token.split("."):
        return None  # not canonical unpadded base64url
    header, claims = json_object(parts[0]), json_object(parts[1])
    if header is None or claims is None:
        return None
    if header.get("alg") != "HS256" or REFUSED_HEADERS & header.keys():
        return None
    if any(name in header and type(header[name]) is not str for name in ("kid", "typ")):
        return None
    expected = hmac.new(SECRET, token.rsplit(".", 1)[0].encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(parts[2], expected):
        return None
    if not {"iss", "aud", "exp"} <= claims.keys() or claims["iss"] != ISS:
        return None
    if any(name in claims and type(claims[name]) is not str for name in ("sub", "jti")):
        return None
    found = audiences(claims)
    if found is None or AUD not in found or not times_ok(claims, NOW):
        return None
    return None if scopes_of(claims) is None else claims


def check_against_reference(token: str, outcome: object, lines: list[str]) -> None:
    claims = reference(token)
    event(f"outcome: {getattr(outcome, 'reason', 'accepted')}")
    if claims is None:
        assert isinstance(outcome, InvalidTokenError), outcome
    else:
        assert isinstance(outcome, AccessToken), (outcome, claims)
        assert thawed(outcome.claims) == claims  # read back exactly, and read-only
        assert outcome.scopes == scopes_of(claims)
        assert (outcome.issuer, outcome.subject) == (ISS, claims.get("sub"))
    assert_not_shown(token, [*texts_of(outcome), *lines])


# -- the token's JSON ---------------------------------------------------------------------------


@given(
    header=objects({"alg": "HS256", "typ": "JWT"}),
    claims=objects(CLAIMS),
)
def test_any_json_in_a_signed_token_is_accepted_exactly_when_valid(
    portal: BlockingPortal, header: str, claims: str
) -> None:
    token = hs256(encode(header), encode(claims))
    with logged() as lines:
        outcome, _ = both(portal, hs_server, "verify", token)
    check_against_reference(token, outcome, lines)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


REGISTERED = {"iss", "aud", "exp", "nbf", "iat", "sub", "jti", "scope", "scp"}
UNREGISTERED = st.text(max_size=10).filter(lambda name: name not in REGISTERED)


@given(extra=st.dictionaries(UNREGISTERED, JSON_VALUES, max_size=6))
def test_any_json_value_in_an_unregistered_claim_is_read_back_exactly(
    portal: BlockingPortal, extra: dict[str, Any]
) -> None:
    claims = {**extra, **CLAIMS}  # the registered claims stay valid: only `extra` varies
    token = hs256(b'{"alg":"HS256"}', json.dumps(claims, ensure_ascii=False).encode())
    assume(len(token) <= 8192)
    outcome, _ = both(portal, hs_server, "verify", token)
    assert isinstance(outcome, AccessToken), outcome
    assert thawed(outcome.claims) == claims


# -- the token's form: segments, base64url, and changes to what was signed ----------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
OTHER_CHARACTERS = st.sampled_from([*ALPHABET, ".", "=", "+", "/", " ", "\x00", "é", "\n", "~"])


@st.composite
def changed(draw: st.DrawFn, token: str) -> str:
    """`token` with one change a forger or a broken client might make."""
    head, payload, signature = token.split(".")
    segments = [head, payload, signature]
    how = draw(
        st.sampled_from(
            ["replace", "insert", "delete", "segments", "padding", "unused bits", "flip"]
        )
    )
    if how in ("replace", "insert", "delete"):
        at = draw(st.integers(0, len(token) - 1))
        character: str = draw(OTHER_CHARACTERS)
        if how == "delete":
            return token[:at] + token[at + 1 :]
        return token[:at] + character + token[at + (how == "replace") :]
    if how == "segments":
        chosen = draw(st.lists(st.sampled_from(segments), min_size=0, max_size=5))
        return ".".join(chosen)
    which = draw(st.integers(0, 2))
    segment = segments[which]
    if how == "padding":
        segments[which] = segment + "=" * draw(st.integers(1, 3))
    elif how == "unused bits":  # the same bytes, spelled differently: never the same token
        if len(segment) % 4 in (2, 3):
            last = ALPHABET.index(segment[-1])
            segments[which] = segment[:-1] + ALPHABET[last ^ draw(st.integers(1, 3))]
    else:  # a bit of the decoded bytes flipped, encoded canonically again
        raw = bytearray(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        bit = draw(st.integers(0, len(raw) * 8 - 1))
        raw[bit // 8] ^= 1 << (bit % 8)
        segments[which] = b64(bytes(raw))
    return ".".join(segments)


def jwks_server(signer: Signer) -> ResourceServer:
    jwks = signer.jwks()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=jwks)

    config = Issuer(
        issuer=ISS, audience=AUD, jwks_uri="https://issuer.test/jwks", algorithms=ASYMMETRIC
    )
    return ResourceServer(config, clock=lambda: NOW, **mocked(answer))


@given(alg=st.sampled_from(["HS256", *ASYMMETRIC]), data=st.data())
def test_a_changed_token_is_never_accepted(
    portal: BlockingPortal, signer: Signer, alg: str, data: st.DataObject
) -> None:
    if alg == "HS256":
        token, make = VALID, hs_server
    else:
        token, make = signer.sign(CLAIMS, alg), lambda: jwks_server(signer)
    forged = data.draw(changed(token))
    with logged() as lines:
        outcome, _ = both(portal, make, "verify", forged)
    if forged == token:
        assert isinstance(outcome, AccessToken)
    else:
        assert isinstance(outcome, InvalidTokenError), outcome
    assert_not_shown(token, [*texts_of(outcome), *lines])


# -- the Authorization header -------------------------------------------------------------------

SCHEMES = st.sampled_from(["Bearer", "bearer", "BEARER", "BeArEr", "Basic", "Bearer,", "DPoP", ""])
SPACES = st.sampled_from(["", " ", "  ", "\t", " \t"])
HEADERS = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda scheme, space, token, after: scheme + space + token + after,
        SCHEMES,
        SPACES,
        st.one_of(st.just(VALID), st.just(VALID[:-1]), st.text(ALPHABET + "=.~+/", max_size=30)),
        st.one_of(SPACES, st.sampled_from([",", ", Bearer x", "=", "==", " x", "\x00", "é"])),
    ),
)
ACCEPTED = re.compile("[Bb][Ee][Aa][Rr][Ee][Rr] +" + re.escape(VALID) + " *")


@given(header=HEADERS)
def test_any_authorization_header_gets_a_documented_answer(
    portal: BlockingPortal, header: str
) -> None:
    with logged() as lines:
        outcome, _ = both(portal, hs_server, "authenticate", header)
    assert isinstance(outcome, (AccessToken, *REFUSALS)), outcome
    assert isinstance(outcome, AccessToken) == bool(ACCEPTED.fullmatch(header)), outcome
    if not header:
        assert isinstance(outcome, MissingTokenError)
    assert_not_shown(VALID, [*texts_of(outcome), *lines])


def _asgi(portal: BlockingPortal, header: bytes) -> tuple[int, bytes]:
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b""}
    scope["headers"] = [(b"authorization", header)]
    server = hs_server()
    messages = asgi(portal, BearerAuthMiddleware(ok_asgi, server), scope)
    portal.call(server.aclose)
    return messages[0]["status"], repr(messages).encode()


def _wsgi(header: bytes) -> tuple[int, bytes]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": ""}
    environ["HTTP_AUTHORIZATION"] = header.decode("latin-1")  # PEP 3333: bytes as latin-1
    started: list[Any] = []
    server = hs_server()
    body = b"".join(
        BearerAuthWSGIMiddleware(ok_wsgi, server)(environ, lambda *status: started.extend(status))
    )
    server.close()
    return int(started[0].split()[0]), repr(started).encode() + body


@given(header=HEADERS.map(lambda h: h.encode("utf-8")) | st.binary(max_size=40))
def test_the_middlewares_answer_any_header_with_a_documented_status(
    portal: BlockingPortal, header: bytes
) -> None:
    text = header.decode("latin-1")  # what both middlewares read from the wire
    expected = 200 if ACCEPTED.fullmatch(text) else None
    for status, shown in (_asgi(portal, header), _wsgi(header)):
        assert status in (200, 400, 401), status
        if expected is not None:
            assert status == expected
        else:
            assert status != 200
        assert VALID.encode() not in shown and VALID.rsplit(".")[-1].encode() not in shown
        assert status == 401 or header  # an empty header is no credentials: 401
