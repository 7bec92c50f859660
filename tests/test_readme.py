"""The README's code runs: the five-minute tour apps, and the blocks built on the local issuer."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bearerguard.testing import LocalIssuer

README = (Path(__file__).parents[1] / "README.md").read_text()
TOUR_ISSUER, TOUR_AUDIENCE = "https://login.example.com/tenant", "api://orders"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)


def section(heading: str, text: str = README) -> str:
    """The text under a heading (`## X` or `### X`), up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    return text.split(f"\n{heading}\n", 1)[1].split(f"\n{level} ", 1)[0]


def tour_snippet(framework: str) -> str:
    (snippet,) = python_blocks(section(f"### {framework}", section("## A five-minute tour")))
    return snippet


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(algorithms=("ES256",), audience=TOUR_AUDIENCE) as issuer:
        yield issuer


def run_snippet(snippet: str, issuer: LocalIssuer, name: str = "app") -> Any:
    """Exec the snippet as written, with the example issuer's URL pointing at the local one."""
    return exec_snippet(snippet, issuer)[name]


def exec_snippet(snippet: str, issuer: LocalIssuer) -> dict[str, Any]:
    # As a module in sys.modules while it runs: Litestar reads handler annotations from there.
    assert TOUR_ISSUER in snippet
    module = types.ModuleType("readme_tour")
    sys.modules[module.__name__] = module
    try:
        code = compile(snippet.replace(TOUR_ISSUER, issuer.issuer), "README.md", "exec")
        exec(code, vars(module))  # noqa: S102
    finally:
        del sys.modules[module.__name__]
    return vars(module)


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
    [
        ("Starlette", starlette_client),
        ("FastAPI", starlette_client),
        ("Flask", flask_client),
        ("Litestar", starlette_client),  # any ASGI app
        ("Quart", starlette_client),
    ],
)
def test_tour_snippet_protects_its_route(
    framework: str, client_for: Callable[[Any], Get], issuer: LocalIssuer
) -> None:
    snippet = tour_snippet(framework)
    assert len([line for line in snippet.splitlines() if line.strip()]) < 15  # "under 15 lines"
    assert_protects_orders(client_for(run_snippet(snippet, issuer)), issuer)


def test_first_screen_snippet_protects_its_route(issuer: LocalIssuer) -> None:
    first_screen = section("## Protect an endpoint")
    assert README.index("## Protect an endpoint") < README.index("## Contents")
    for framework in ("fastapi", "starlette", "flask", "django", "drf", "litestar", "quart", "mcp"):
        assert f'pip install "bearerguard[{framework}]"' in first_screen
    (snippet,) = python_blocks(first_screen)
    assert_protects_orders(starlette_client(run_snippet(snippet, issuer)), issuer)


@pytest.mark.parametrize("framework", ["Django", "Django REST framework"])
def test_django_snippets_run_as_written(framework: str, issuer: LocalIssuer) -> None:
    # settings.py, views.py and urls.py in one block: its settings go into Django's settings and
    # its urlpatterns become the URLconf.
    from django.test import Client, override_settings

    from bearerguard.integrations.django import configured_guard
    from tests.integrations import django_project  # Django's settings, configured once

    snippet = tour_snippet(framework)
    assert len([line for line in snippet.splitlines() if line.strip()]) < 17
    namespace = exec_snippet(snippet, issuer)
    urls = types.ModuleType("readme_urls")
    urls.urlpatterns = namespace["urlpatterns"]  # type: ignore[attr-defined]
    settings = {"BEARERGUARD": namespace["BEARERGUARD"], "ROOT_URLCONF": urls}
    middleware = namespace.get("MIDDLEWARE", [])
    with override_settings(MIDDLEWARE=middleware, **settings):
        client = Client()

        def get(headers: dict[str, str]) -> Answer:
            response = client.get("/orders", headers=headers)
            body = response.json() if response.content else None
            return response.status_code, response.get("www-authenticate", ""), body

        assert_protects_orders(get, issuer)
        configured_guard().server.close()
    if framework == "Django":  # the class path the README gives is the real one
        assert middleware == [django_project.MIDDLEWARE]


def assert_protects_orders(get: Get, issuer: LocalIssuer) -> None:
    """200 with orders.read, 403 without it, 401 without a token or with an expired one."""

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
    "block", [b for b in python_blocks(README) if "from bearerguard.testing import " in b]
)
def test_readme_blocks_on_the_test_kit_run(block: str) -> None:
    """Blocks that import the test kit run as written, and so do the tests they define."""
    namespace: dict[str, Any] = {"__name__": "readme_block"}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    for name, test in list(namespace.items()):
        if name.startswith("test_") and callable(test):
            test()


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_contents_lists_every_section_and_every_link_leads_somewhere() -> None:
    headings = re.findall(r"^(#{2,3}) (.+)$", README, re.M)
    anchors = [github_anchor(text) for _, text in headings]
    assert len(anchors) == len(set(anchors)), "two headings share an anchor"
    contents = section("## Contents")
    listed = set(re.findall(r"\]\(#([^)]+)\)", contents))
    for level, text in headings:
        if level == "##" and text != "Contents":
            assert github_anchor(text) in listed, f"## {text} is missing from ## Contents"
    for target in re.findall(r"\]\(#([^)]+)\)", README):
        assert target in anchors, f"#{target} is no heading of README.md"


def test_events_block_runs() -> None:
    (block,) = python_blocks(section("### Events: logs, metrics and audits from one place"))
    exec(compile(block, "README.md (events)", "exec"), {})  # noqa: S102 - our own README
