"""The one renderer: RFC 6750 §3 parameters, quoted-string escaping, RFC 9728, 503."""

from __future__ import annotations

import json

import pytest

from bearerguard import (
    InsufficientScopeError,
    InvalidRequestError,
    InvalidTokenError,
    MissingTokenError,
    Reason,
    UpstreamUnavailableError,
)
from bearerguard._challenge import challenge


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
