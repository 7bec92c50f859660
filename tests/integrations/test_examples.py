"""Each example runs with one command and answers over real HTTP (bounded in time)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize(
    "example",
    [
        "starlette_app.py",
        "fastapi_app.py",
        "flask_app.py",
        "django_app.py",
        "litestar_app.py",
        "quart_app.py",
    ],
)
def test_example_runs_with_one_command(example: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent / "src")}
    process = subprocess.Popen(  # noqa: S603 - our own example, by path
        [sys.executable, str(EXAMPLES / example)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        match = re.search(r"curl -i (\S+/orders) -H 'Authorization: (Bearer \S+)'", lines[3])
        assert match, lines
        url, authorization = match.groups()
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(url, headers={"authorization": authorization}, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the example did not start in 20 s"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["client_id"] == "test-client"
        refused = httpx.get(url, timeout=5)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('Bearer realm="orders-api"')
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
