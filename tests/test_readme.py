"""The README's code runs: the five-minute tour apps, and the blocks built on the local issuer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bearerguard.testing import LocalIssuer

README = (Path(__file__).parents[1] / "README.md").read_text()
TOUR_ISSUER, TOUR_AUDIENCE = "https://login.example.com/tenant", "api://orders"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)


def tour_snippet(framework: str) -> str:
    tour = README.split("\n## A five-minute tour\n", 1)[1].split("\n## ", 1)[0]
    section = tour.split(f"\n### {framework}\n", 1)[1].split("\n### ", 1)[0]
    (snippet,) = python_blocks(section)
    return snippet


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(algorithms=("ES256",), audience=TOUR_AUDIENCE) as issuer:
        yield issuer


def run_snippet(snippet: str, issuer: LocalIssuer) -> Any:
    """Exec the snippet as written, with the example issuer's URL pointing at the local one."""
    assert TOUR_ISSUER in snippet
    namespace: dict[str, Any] = {"__name__": "readme_tour"}
    exec(compile(snippet.replace(TOUR_ISSUER, issuer.issuer), "README.md", "exec"), namespace)  # noqa: S102
    return namespace["app"]


Answer = tuple[int, str, Any]  # status, WWW-Authenticate, JSON body
Get = Callable[[dict[str, str]], Answer]


def starlette_client(app: Any) -> Get:
    from starlette.testclient import TestClient

    client = TestClient(app)

    def get(headers: dict[str, str]) -> Answer:
        response = client.get("/orders", headers=headers)
        body = response.json() if response.content else None
        return response.status_code, response.headers.get("www-authenticate", ""), body

    return get


def flask_client(app: Any) -> Get:
    client = app.test_client()

    def get(headers: dict[str, str]) -> Answer:
        response = client.get("/orders", headers=headers)
        body = response.get_json(silent=True)
        return response.status_code, response.headers.get("www-authenticate", ""), body

    return get


@pytest.mark.parametrize(
    ("framework", "client_for"),
    [("Starlette", starlette_client), ("FastAPI", starlette_client), ("Flask", flask_client)],
)
def test_tour_snippet_protects_its_route(
    framework: str, client_for: Callable[[Any], Get], issuer: LocalIssuer
) -> None:
    snippet = tour_snippet(framework)
    assert len([line for line in snippet.splitlines() if line.strip()]) < 15  # "under 15 lines"
    get = client_for(run_snippet(snippet, issuer))

    def call(token: str | None) -> Answer:
        return get({} if token is None else {"Authorization": f"Bearer {token}"})

    assert call(issuer.mint(subject="orders-client", scope="orders.read")) == (
        200,
        "",
        {"client": "orders-client"},
    )
    status, challenge, _ = call(issuer.mint(scope="orders.write"))
    assert status == 403
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="orders.read"' in challenge
    status, challenge, _ = call(None)
    assert status == 401
    assert challenge.startswith("Bearer")
    assert "error=" not in challenge
    status, challenge, _ = call(issuer.mint(scope="orders.read", expires_in=-120))
    assert status == 401
    assert 'error="invalid_token"' in challenge


@pytest.mark.parametrize(
    "block",
    [b for b in python_blocks(README) if "from bearerguard.testing import LocalIssuer" in b],
)
def test_readme_blocks_on_the_local_issuer_run(block: str) -> None:
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_block"})  # noqa: S102
