"""`bearerguard demo`, run as users run it: a subprocess talking HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import bearerguard
from bearerguard.cli._demo_steps import describe_token
from bearerguard.testing import LocalIssuer

# The subprocess imports the bearerguard these tests import (the checkout, or the installed wheel).
ENV = {**os.environ, "PYTHONPATH": str(Path(bearerguard.__file__).parents[1])}
STEPS = [  # (title, expected status): the demo's table, in order
    ("no token", 401),
    ("scope granted", 200),
    ("scope missing", 403),
    ("expired token", 401),
    ("other audience", 401),
    ("Jamf api-role", 200),
    ("opaque token", 200),
    ("DPoP-bound token", 200),
    ("stolen DPoP token", 401),
    ("key rotation", 200),
    ("AS down, keys cached", 200),
    ("AS down, opaque token", 503),
]


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "bearerguard", "demo", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,  # the demo bounds every wait; this only keeps a broken one from hanging CI
        check=False,
    )


def unwrap(output: str) -> str:
    """The demo wraps long values at 100 columns; join them again (JSON bodies without a space)."""
    lines: list[str] = []
    row = ""
    for line in output.splitlines():
        if line.startswith(" " * 26) and lines:
            lines[-1] += ("" if row == "body" else " ") + line.strip()
            continue
        named = re.match(r" {8}(\S+) ", line)
        row = named[1] if named else ""
        lines.append(line)
    return "\n".join(lines) + "\n"


def rows(output: str) -> dict[str, tuple[int, int | None, str]]:
    """Title -> (expected, got, verdict) from the demo's step lines."""
    found = re.findall(r"^\[\s*\d+/\d+\] (.+?)\s+(\d{3})\s+(\d{3}|-)  (.*)$", output, re.M)
    return {t: (int(e), None if g == "-" else int(g), v) for t, e, g, v in found}


def step_details(output: str, title: str) -> str:
    """The lines printed under one step."""
    match = re.search(rf"^\[\s*\d+/\d+\] {re.escape(title)} .*\n((?:        .*\n)+)", output, re.M)
    assert match, output
    return match.group(1)


def test_demo_plays_every_step_over_http() -> None:
    result = demo()

    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(result.stdout) == {title: (status, status, "ok") for title, status in STEPS}
    assert "12/12 steps behaved as expected" in result.stdout
    out = unwrap(result.stdout)
    assert 'WWW-Authenticate  Bearer realm="orders-api", resource_metadata="http://127.0.0.1:' in (
        step_details(out, "no token")
    )
    missing = step_details(out, "scope missing")
    assert 'error="insufficient_scope"' in missing
    assert 'scope="orders.read"' in missing
    assert "The access token has expired." in step_details(out, "expired token")
    assert "issuer.mint(expires_in=-120)" in step_details(out, "expired token")  # says how
    jamf = step_details(out, "Jamf api-role")
    assert "client_secret_post" in jamf
    assert '"scopes":["Read Computers","Update Computers"]' in jamf
    assert '"source":"introspection"' in step_details(out, "opaque token")
    kids = re.findall(r"kid (\S+)\)", step_details(out, "scope granted"))
    rotated = re.findall(r"kid (\S+)\)", step_details(out, "key rotation"))
    assert kids and rotated and kids != rotated
    assert "0 request(s) reached the issuer" in step_details(out, "AS down, keys cached")
    assert "temporarily_unavailable" in step_details(out, "AS down, opaque token")
    # The bound token works with its proof, and the same token without its key is refused.
    assert '"scopes":["orders.read"]' in step_details(out, "DPoP-bound token")
    stolen = step_details(out, "stolen DPoP token")
    assert "DPOP_DOWNGRADE" in stolen and "bound to a DPoP key" in stolen
    fingerprints = [
        re.findall(r"sha256 ([0-9a-f]{8})", step_details(out, title))
        for title in ("DPoP-bound token", "stolen DPoP token")
    ]
    assert fingerprints[0] == fingerprints[1]  # the very token of the step before


def test_demo_never_prints_a_token_or_a_secret() -> None:
    out = unwrap(demo().stdout)

    assert "eyJ" not in out  # not even the start of a JWT (its header, base64url-encoded)
    jwt = r"with a JWT \(\d+ chars, sha256 [0-9a-f]{8}, kid rs256-[0-9a-f]+\)"
    assert len(re.findall(jwt, out)) == 9  # steps 2-6 and 8-11
    opaque = r"with an opaque token \(\d+ chars, sha256 [0-9a-f]{8}\)"
    assert len(re.findall(opaque, out)) == 2  # steps 7 and 12
    assert "demo-secret" not in out
    assert "jamf-secret" not in out
    assert "orders-api-secret" not in out


@pytest.mark.parametrize("opaque", [False, True], ids=["jwt", "opaque"])
def test_a_token_is_shown_by_a_fingerprint_that_shares_nothing_with_it(opaque: bool) -> None:
    with LocalIssuer() as issuer:
        token = issuer.mint_opaque() if opaque else issuer.mint()
    text = describe_token(token)
    assert hashlib.sha256(token.encode()).hexdigest()[:8] in text
    assert f"{len(token)} chars" in text
    assert not any(token[i : i + 6] in text for i in range(len(token) - 5)), text


def test_broken_introspection_fails_the_demo() -> None:
    result = demo("--fault", "introspection")

    assert result.returncode == 1
    table = rows(result.stdout)
    assert table.pop("opaque token") == (200, 503, "UNEXPECTED: wanted 200")
    assert table == {title: (status, status, "ok") for title, status in STEPS if title in table}
    assert len(table) == len(STEPS) - 1
    assert "FAILED: 1 of 12 steps did not behave: opaque token" in result.stdout
    assert "FAULT   the issuer's introspection endpoint answers 500" in result.stdout


@pytest.fixture
def serving() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bearerguard", "demo", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def test_serve_keeps_both_servers_up_until_ctrl_c(serving: subprocess.Popen[str]) -> None:
    assert serving.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("bearerguard check"):  # the last curl line
        line = serving.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    text = "".join(lines)
    token_url = re.search(r"-d scope=orders\.read (\S+/token) ", text)
    orders_url = re.search(r"^curl -i (\S+/orders) -H", text, re.M)
    assert token_url and orders_url, text

    answer = httpx.post(
        token_url[1],
        data={"grant_type": "client_credentials", "scope": "orders.read"},
        auth=("demo-client", "demo-secret"),
        timeout=5,
    )
    token = answer.json()["access_token"]
    called = httpx.get(orders_url[1], headers={"authorization": f"Bearer {token}"}, timeout=5)
    assert called.status_code == 200
    assert called.json()["client_id"] == "demo-client"

    serving.send_signal(signal.SIGINT)
    assert serving.wait(timeout=15) == 0
    assert "stopped" in serving.stdout.read()
    with pytest.raises(httpx.ConnectError):
        httpx.get(orders_url[1], timeout=5)
