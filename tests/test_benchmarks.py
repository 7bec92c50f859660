"""The benchmark harness still runs: a quick smoke run of one tiny group (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"

pytestmark = pytest.mark.skipif(not RUN.exists(), reason="benchmarks/ is not in this tree")


def test_quick_run_of_one_group_writes_json_and_markdown(tmp_path: Path) -> None:
    command = [sys.executable, str(RUN), "--quick", "verify.HS256", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603

    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "quick.json").read_text())
    assert results["settings"]["quick"] is True
    assert results["machine"]["cpu"]
    assert results["machine"]["openssl"]
    (group,) = results["groups"]
    assert group["name"] == "verify.HS256"
    names = {case["name"] for case in group["cases"]}
    assert {"minimal verifier (reference.py)", "PyJWT jwt.decode"} <= names
    assert {"bearerguard verify() cold", "bearerguard verify() warm"} <= names
    for case in group["cases"]:
        assert len(case["samples_ns"]) == results["settings"]["rounds"]
        assert all(sample > 0 for sample in case["samples_ns"])
    assert {check["verdict"] for check in group["checks"]} <= {"ok", "over", "info"}
    assert "no request reached the issuer while measuring" in " ".join(group["notes"])
    table = (tmp_path / "quick.md").read_text()
    assert "## verify.HS256" in table
    assert "miss: bearerguard cold / minimal verifier" in table


def test_list_names_every_group() -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(RUN), "--list"], capture_output=True, text=True, check=True
    )
    groups = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"verify.RS256", "verify.HS256", "growth.token-size", "growth.jwks-size"} <= groups
    assert "growth.issuers" in groups
    assert {"asgi.starlette", "wsgi.plain", "wsgi.flask", "http.uvicorn"} <= groups
    assert {"cache.introspection", "cache.roles"} <= groups


def test_quick_run_of_the_middleware_group_measures_hits_and_misses(tmp_path: Path) -> None:
    command = [sys.executable, str(RUN), "--quick", "wsgi.plain", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603

    assert done.returncode == 0, done.stderr
    (group,) = json.loads((tmp_path / "quick.json").read_text())["groups"]
    names = {case["name"] for case in group["cases"]}
    assert {"bare WSGI function", "BearerAuthWSGIMiddleware, hit"} <= names
    assert {"BearerAuthWSGIMiddleware, miss", "minimal guard (reference.py)"} <= names
    budgeted = [check for check in group["checks"] if check["budget"] is not None]
    assert [check["label"] for check in budgeted] == ["hit: middleware - bare app"]
    assert "no request reached the issuer while measuring" in " ".join(group["notes"])
