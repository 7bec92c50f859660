"""The one renderer (public: `challenge_for`): RFC 6750 §3 parameters, quoting, RFC 9728, 503."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearerguard import (
    BearerError,
    Challenge,
    ConfigurationError,
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
    UpstreamUnavailableError,
)
from bearerguard import challenge_for as challenge


def test_challenge_missing_token_has_no_error_code_and_no_body() -> None:
    rendered = challenge(MissingTokenError(), realm="api")
    assert rendered.status == 401
    assert rendered.headers == (
        ("www-authenticate", 'Bearer realm="api"'),
        ("cache-control", "no-store"),
    )
    assert rendered.body == b""
    assert challenge(MissingTokenError()).header("www-authenticate") == "Bearer"


def test_challenge_quotes_backslash_and_dquote() -> None:
    rendered = challenge(InvalidTokenError(Reason.EXPIRED), realm='a "b" \\c')
    assert rendered.header("www-authenticate") == (
        'Bearer realm="a \\"b\\" \\\\c", error="invalid_token", '
        'error_description="The access token has expired."'
    )


def test_challenge_insufficient_scope_names_the_scopes_and_the_metadata() -> None:
    rendered = challenge(
        InsufficientScopeError(["b", "a", "b"]), resource_metadata="https://x/.well-known/y"
    )
    assert rendered.status == 403
    assert rendered.header("www-authenticate") == (
        'Bearer error="insufficient_scope", error_description="The access token lacks a '
        'required scope.", scope="a b", resource_metadata="https://x/.well-known/y"'
    )
    assert json.loads(rendered.body) == {
        "error": "insufficient_scope",
        "error_description": "The access token lacks a required scope.",
    }
    assert rendered.header("content-type") == "application/json"


def test_challenge_invalid_request_is_400() -> None:
    rendered = challenge(InvalidRequestError(Reason.MULTIPLE_CREDENTIALS))
    assert rendered.status == 400
    assert json.loads(rendered.body)["error"] == "invalid_request"


@pytest.mark.parametrize(("retry_after", "header"), [(9.2, "10"), (0.0, "1"), (None, None)])
def test_challenge_upstream_is_503_without_a_challenge(
    retry_after: float | None, header: str | None
) -> None:
    rendered = challenge(UpstreamUnavailableError("keys", retry_after=retry_after), realm="api")
    assert rendered.status == 503
    assert rendered.header("www-authenticate") is None
    assert rendered.header("retry-after") == header
    assert json.loads(rendered.body) == {
        "error": "temporarily_unavailable",
        "error_description": "The authorization server could not be reached.",
    }
    assert b"keys" not in rendered.body  # the internal message stays internal


# RFC 9110 §11.4 / RFC 6750 §3: `Bearer` then comma-separated auth-params, each a quoted-string.
_PARAM = r'([a-z_]+)="((?:[^"\\]|\\.)*)"'
_CHALLENGE = re.compile(rf"Bearer(?: {_PARAM}(?:, {_PARAM})*)?")
_ERRORS = st.one_of(
    st.builds(MissingTokenError),
    st.builds(InvalidRequestError, st.sampled_from([Reason.MALFORMED_HEADER, Reason.TOKEN_IN_URL])),
    st.builds(InvalidTokenError, st.sampled_from([Reason.EXPIRED, Reason.BAD_SIGNATURE])),
    st.builds(InsufficientScopeError, st.lists(st.from_regex(r"[!#-\[\]-~]+", fullmatch=True))),
)


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


@given(exc=_ERRORS, realm=st.none() | st.text(max_size=40))
def test_challenge_for_renders_any_refusal_and_realm_as_one_parseable_header(
    exc: BearerError, realm: str | None
) -> None:
    if realm is not None and not (realm.isascii() and realm.isprintable()):
        with pytest.raises(ConfigurationError, match="realm"):
            challenge(exc, realm=realm)
        return
    rendered = challenge(exc, realm=realm)
    assert isinstance(rendered, Challenge)
    assert rendered.status == exc.status_code
    header = rendered.header("www-authenticate")
    assert header is not None
    assert _CHALLENGE.fullmatch(header), header
    params = {m[0]: _unquote(m[1]) for m in re.findall(_PARAM, header)}
    assert params.get("realm") == realm
    assert params.get("error") == exc.error
    if exc.error is None:
        assert rendered.body == b""
    else:
        assert json.loads(rendered.body) == {
            "error": exc.error,
            "error_description": exc.reason.value,
        }


def test_challenge_for_refuses_a_resource_metadata_that_would_break_the_header() -> None:
    with pytest.raises(ConfigurationError, match="resource_metadata"):
        challenge(MissingTokenError(), resource_metadata="https://x/\r\nSet-Cookie: a=b")
