"""A token the server verified before is served only behind a well-formed header (RFC 6750 §2.1).

The header of a request whose token is in the verified-token cache is checked in part only (the
scheme): these tests show that every malformed form is still refused once the token is cached.
"""

from __future__ import annotations

import pytest

from bearerguard import (
    InvalidRequestError,
    InvalidTokenError,
    Issuer,
    MissingTokenError,
    ResourceServer,
)
from bearerguard.testing import LocalIssuer

from ..conftest import Twin

AUDIENCE = "api://orders"
ISSUER = "https://idp.example.test"


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    return LocalIssuer(algorithms=("HS256",), audience=AUDIENCE)  # minting needs no server


@pytest.fixture
def server(issuer: LocalIssuer) -> ResourceServer:
    return ResourceServer(
        Issuer(
            issuer=ISSUER,
            audience=AUDIENCE,
            algorithms=["HS256"],
            shared_secret=issuer.shared_secret(),
        )
    )


@pytest.mark.parametrize("form", ["Bearer {}", "bearer {}", "BEARER {}", "Bearer   {}  "])
def test_a_cached_token_behind_a_good_header_is_served(
    issuer: LocalIssuer, server: ResourceServer, twin: Twin, form: str
) -> None:
    token = issuer.mint(issuer=ISSUER, scope="orders.read")
    first = twin.verify(server, token)
    assert twin.authenticate(server, form.format(token)) is first  # the cached AccessToken


@pytest.mark.parametrize(
    ("form", "refusal"),
    [
        ("Bearer\t{}", InvalidRequestError),
        ("Bearer {} junk", InvalidRequestError),  # the cached token and more: not one b64token
        ("Bearer {},x", InvalidRequestError),
        ("Bearer {}\r\nX-Injected: 1", InvalidRequestError),
        ("Bearer {}, Basic dTpw", InvalidRequestError),
        ("Basic dTpw, Bearer {}", InvalidRequestError),
        ("Bearer {0}, Bearer {0}", InvalidRequestError),
        ("Bearer {}=", InvalidTokenError),  # a b64token, but not the cached string: no JWS
        (" Bearer {}", InvalidRequestError),
        ("Bearer{}", MissingTokenError),
        ("Beaŕer {}", InvalidRequestError),
        ("Token {}", MissingTokenError),
    ],
)
def test_a_cached_token_behind_a_malformed_header_is_refused(
    issuer: LocalIssuer,
    server: ResourceServer,
    twin: Twin,
    form: str,
    refusal: type[Exception],
) -> None:
    token = issuer.mint(issuer=ISSUER, scope="orders.read")
    twin.verify(server, token)
    with pytest.raises(refusal):
        twin.authenticate(server, form.format(token))
