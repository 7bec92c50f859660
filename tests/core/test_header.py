from __future__ import annotations

import pytest

from bearerguard import InvalidRequestError, MissingTokenError
from bearerguard._header import extract_bearer


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),  # RFC 9110 §11.1: the scheme is case-insensitive
        ("BEARER a.b.c", "a.b.c"),
        ("Bearer   a-b_c~d+e/f==", "a-b_c~d+e/f=="),  # the whole b64token alphabet
        ("Bearer abc ", "abc"),
    ],
)
def test_header_extracts_b64token(header: str, token: str) -> None:
    assert extract_bearer(header) == token


@pytest.mark.parametrize(
    "header", [None, "", "Basic dXNlcjpwYXNz", "Digest x=1", "Negotiate", "Bearerabc"]
)
def test_header_without_bearer_credentials_is_missing(header: str | None) -> None:
    with pytest.raises(MissingTokenError):
        extract_bearer(header)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",  # scheme with no token
        "Bearer ",
        "Bearer a b",  # two tokens
        "Bearer a,b",
        "Bearer a=b",  # '=' only as trailing padding
        "Bearer tök",  # outside the b64token alphabet
        "Bearer\tabc",
        "Bearer abc\r\nX-Injected: 1",
        " Bearer abc",
        "Bear(er abc",
        "Bearer ==",  # padding with nothing before it
        "Bearer a\x00b",
        "Beaŕer abc",  # a scheme outside the token alphabet
    ],
)
def test_header_malformed_bearer_is_invalid_request(header: str) -> None:
    with pytest.raises(InvalidRequestError):
        extract_bearer(header)


@pytest.mark.parametrize(
    "header",
    ["Bearer a, Bearer b", "Basic dTpw, Bearer abc", "Bearer abc, Basic dTpw", "bearer a,bearer a"],
)
def test_header_joined_field_lines_are_multiple_credentials(header: str) -> None:
    # RFC 9110 §5.3: a WSGI server joins two Authorization lines with a comma.
    with pytest.raises(InvalidRequestError) as refused:
        extract_bearer(header)
    assert refused.value.reason.name == "MULTIPLE_CREDENTIALS"


def test_header_other_scheme_with_auth_params_is_not_bearer() -> None:
    with pytest.raises(MissingTokenError):
        extract_bearer('Digest username="a", realm="b"')
