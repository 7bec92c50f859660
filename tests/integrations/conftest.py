"""The error table every adapter must answer identically, and callers for ASGI and WSGI apps.

Each row is one request against an app whose `/orders` needs `orders.read` and whose `/reports`
needs one of `reports.read` or `admin`; the expected status, exact `WWW-Authenticate` value and
body are the same for raw ASGI, raw WSGI, Starlette, FastAPI and Flask.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bearerguard import Issuer, ResourceServer
from bearerguard.testing import LocalIssuer

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))

REALM = "orders-api"
RESOURCE = "https://api.example.test/v1"
METADATA_URL = "https://api.example.test/.well-known/oauth-protected-resource/v1"
RM = f'resource_metadata="{METADATA_URL}"'


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# (path and query, Authorization field lines) -> Answer
Call = Callable[[str, list[str]], Answer]


@dataclass(frozen=True)
class Row:
    name: str
    path: str
    authorization: Callable[[LocalIssuer], list[str]]
    status: int
    challenge: str | None
    body: dict[str, str] | None
    down: bool = False


def _bearer(**claims: Any) -> Callable[[LocalIssuer], list[str]]:
    return lambda issuer: ["Bearer " + issuer.mint(**claims)]


def _refusal(error: str, description: str, extra: str = "") -> tuple[str, dict[str, str]]:
    header = (
        f'Bearer realm="{REALM}", error="{error}", error_description="{description}"{extra}, {RM}'
    )
    return header, {"error": error, "error_description": description}


_MALFORMED = _refusal("invalid_request", "The Authorization header is malformed.")
_TWO = _refusal("invalid_request", "The request carries more than one access token.")
_IN_URL = _refusal("invalid_request", "Access tokens are not accepted in the URL.")
_GARBAGE = _refusal("invalid_token", "The access token is malformed.")
_EXPIRED = _refusal("invalid_token", "The access token has expired.")
_AUDIENCE = _refusal("invalid_token", "The access token is not intended for this resource.")
_SCOPE = "The access token lacks a required scope."
_NO_ORDERS = _refusal("insufficient_scope", _SCOPE, ', scope="orders.read"')
_NO_REPORTS = _refusal("insufficient_scope", _SCOPE, ', scope="admin reports.read"')

ROWS = [
    Row("ok", "/orders", _bearer(scope="orders.read"), 200, None, None),
    Row("no token", "/orders", lambda _: [], 401, f'Bearer realm="{REALM}", {RM}', None),
    Row(
        "other scheme",
        "/orders",
        lambda _: ["Basic dTpw"],
        401,
        f'Bearer realm="{REALM}", {RM}',
        None,
    ),
    Row("malformed header", "/orders", lambda _: ["Bearer a b"], 400, *_MALFORMED),
    Row("two headers", "/orders", lambda i: ["Bearer " + i.mint(), "Bearer x"], 400, *_TWO),
    Row("header and query", "/orders?access_token=x", _bearer(scope="orders.read"), 400, *_IN_URL),
    Row("query only", "/orders?access_token=x", lambda _: [], 400, *_IN_URL),
    Row("bad token", "/orders", lambda _: ["Bearer not-a-jwt"], 401, *_GARBAGE),
    Row("expired", "/orders", _bearer(scope="orders.read", expires_in=-120), 401, *_EXPIRED),
    Row(
        "wrong audience",
        "/orders",
        _bearer(scope="orders.read", audience="api://x"),
        401,
        *_AUDIENCE,
    ),
    Row("missing scope", "/orders", _bearer(scope="orders.write"), 403, *_NO_ORDERS),
    Row("any-of ok", "/reports", _bearer(scope="admin"), 200, None, None),
    Row("any-of missing", "/reports", _bearer(scope="orders.read"), 403, *_NO_REPORTS),
    Row("AS down", "/orders", _bearer(scope="orders.read"), 503, None, None, down=True),
]
_UNAVAILABLE = {
    "error": "temporarily_unavailable",
    "error_description": "The authorization server could not be reached.",
}


def check_row(row: Row, issuer: LocalIssuer, call: Call) -> Answer:
    """Make the row's request and assert status, exact challenge, body and cache headers."""
    authorization = row.authorization(issuer)
    if row.down:
        issuer.go_down("refuse")
    answer = call(row.path, authorization)
    assert answer.status == row.status, answer
    assert answer.headers.get("www-authenticate") == row.challenge
    if row.status == 200:
        return answer
    assert answer.headers["cache-control"] == "no-store"
    if row.down:
        assert answer.headers["retry-after"] == "10"  # the default refetch cool-down
        assert answer.json() == _UNAVAILABLE
    elif row.body is None:
        assert answer.body == b""
        assert "content-type" not in answer.headers
    else:
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == row.body
    return answer


@pytest.fixture
def server(local_issuer: LocalIssuer) -> Iterator[ResourceServer]:
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience))
    yield server
    server.close()


def asgi_caller(client: TestClient) -> Call:
    """Call an ASGI app through Starlette's TestClient (raw ASGI underneath)."""

    def call(path: str, authorization: list[str]) -> Answer:
        headers = [("authorization", value) for value in authorization]
        response = client.get(path, headers=headers)
        return Answer(response.status_code, dict(response.headers), response.content)

    return call


def raw_asgi_caller(app: Any) -> Call:
    """Call an ASGI app as a server does: each header line as it came (latin-1), no client
    library in between to refuse or reshape odd values; one event loop per call."""

    def call(path: str, authorization: list[str]) -> Answer:
        target, _, query = path.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": target,
            "raw_path": target.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver")]
            + [(b"authorization", line.encode("latin-1")) for line in authorization],
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000),
        }
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # no disconnect: apps stop listening once they answer
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(app(scope, receive, send))
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in sent[0]["headers"]}
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return Answer(sent[0]["status"], headers, body)

    return call


def wsgi_environ(method: str, path_info: str, query: str) -> dict[str, Any]:
    """A minimal PEP 3333 environ, as a server builds it (`PATH_INFO` already decoded)."""
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def wsgi_caller(app: Callable[..., Any]) -> Call:
    """Call a WSGI app the way a server does: repeated header lines joined by commas."""

    def call(path: str, authorization: list[str]) -> Answer:
        path_info, _, query = path.partition("?")
        environ = wsgi_environ("GET", path_info, query)
        if authorization:
            environ["HTTP_AUTHORIZATION"] = ", ".join(authorization)
        started: list[Any] = []
        body = b"".join(app(environ, lambda status, headers, *_: started.extend([status, headers])))
        headers = {name.lower(): value for name, value in started[1]}
        return Answer(int(started[0].split()[0]), headers, body)

    return call


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the server's single-flight locks are asyncio locks
