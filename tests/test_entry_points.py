"""The installed package's entry points: the `bearerguard` command and the pytest plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import bearerguard

USER_TESTS = """
import httpx


def test_fixture_from_the_plugin(local_issuer):
    token = local_issuer.mint(scope="orders.read")
    assert token.count(".") == 2
    assert httpx.get(local_issuer.jwks_uri, timeout=5).json() == local_issuer.jwks()


def test_factory_from_the_plugin(local_issuer_factory):
    assert local_issuer_factory(algorithms=("ES256",)).kid("ES256").startswith("es256-")
"""


def test_entry_points_are_declared() -> None:
    (script,) = entry_points(group="console_scripts", name="bearerguard")
    assert script.value == "bearerguard.__main__:main"
    (plugin,) = entry_points(group="pytest11", name="bearerguard")
    assert plugin.value == "bearerguard.pytest_plugin"


def test_a_users_suite_gets_the_fixtures_without_importing_anything(tmp_path: Path) -> None:
    # A test file of "another project": no conftest, no pytest_plugins, no import of bearerguard.
    (tmp_path / "test_users_api.py").write_text(USER_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = str(Path(bearerguard.__file__).parents[1])  # the bearerguard under test

    result = subprocess.run(  # noqa: S603 - pytest itself
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
