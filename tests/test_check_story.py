"""`bearerguard check` tells the same story as the server (issue 14), against real servers.

A pasted `Bearer …` value, `--version`, `--require` explaining a 403, an introspection-only
configuration (the token is introspected, as the server would, secrets never shown), progress on
stderr while anything is fetched (timeouts as they happen), and notes where a running server
holding cached keys or answers may disagree with a fresh check.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import jwt
import pytest

import bearerguard
from bearerguard import InvalidTokenError, ResourceServer, UpstreamUnavailableError
from bearerguard.__main__ import main
from bearerguard.testing import DPoPKey, LocalIssuer

from .conftest import Twin


@pytest.fixture(autouse=True)
def _no_bearerguard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BEARERGUARD_"):
            monkeypatch.delenv(name)


def against(issuer: LocalIssuer) -> list[str]:
    return ["--issuer", issuer.issuer, "--audience", issuer.audience]


def check(capsys: pytest.CaptureFixture[str], token: str, *flags: str) -> tuple[int, str, str]:
    """`bearerguard check` with the token after "--", as the help says: a random opaque token
    may start with "-" (base64url), and would then be read as an option."""
    code = main(["check", *flags, "--", token])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json(
    capsys: pytest.CaptureFixture[str], token: str, *flags: str
) -> tuple[int, dict[str, Any]]:
    code, out, _ = check(capsys, token, *flags, "--json")
    return code, json.loads(out)


def steps(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in document["steps"]}


# -- a pasted header value -----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer  ", "Authorization: Bearer "])
def test_a_pasted_bearer_value_is_checked_and_said_so(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str], prefix: str
) -> None:
    token = local_issuer.mint()
    code, out, _ = check(capsys, prefix + token, *against(local_issuer))
    assert code == 0, out
    assert "verdict    VALID" in out
    assert f"note       the pasted value began with {prefix!r}: checked what follows it" in out
    code, document = check_json(capsys, prefix + token, *against(local_issuer))
    assert code == 0
    assert document["notes"][0].startswith(f"the pasted value began with {prefix!r}")
    assert token not in json.dumps(document)


def test_a_scheme_alone_is_not_taken_for_a_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    code, document = check_json(capsys, "Bearer", "--issuer", "https://i.test", "--audience", "a")
    assert code == 1
    assert document["verdict"]["reason"] == "MALFORMED"  # "Bearer" itself is the token checked
    assert not any("pasted" in note for note in document["notes"])


# -- --version -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--version"], ["check", "--version"]])
def test_version(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"bearerguard {bearerguard.__version__}"


# -- --require explains a 403 --------------------------------------------------------------


def test_require_explains_a_403(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    token = local_issuer.mint(scope="orders.read")
    code, out, _ = check(capsys, token, *against(local_issuer), "--require", "orders.write")
    assert code == 1
    require = next(row for row in out.splitlines() if row.split()[1:2] == ["require"])
    assert "needs orders.write; the token has orders.read (missing orders.write)" in require
    assert "<-- first failure: SCOPE, insufficient_scope" in require
    assert "REFUSED at require: SCOPE" in out and 'HTTP 403, error="insufficient_scope"' in out

    code, document = check_json(
        capsys, token, *against(local_issuer), "--require", "orders.read, orders.write"
    )
    assert code == document["exit_code"] == 1
    assert document["verdict"] | {"description": None} == {
        "valid": False,
        "step": "require",
        "reason": "SCOPE",
        "description": None,
        "status": 403,
        "error": "insufficient_scope",
    }

    code, document = check_json(capsys, token, *against(local_issuer), "--require", "orders.read")
    assert code == 0
    assert steps(document)["require"]["status"] == "ok"


def test_require_decides_nothing_after_an_earlier_failure(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    token = local_issuer.mint(scope="orders.read", expires_in=-3600)
    code, document = check_json(capsys, token, *against(local_issuer), "--require", "x")
    assert code == 1
    assert document["verdict"]["reason"] == "EXPIRED"  # 401 first: the scope is checked after
    assert steps(document)["require"]["status"] == "failed"
    assert "decides nothing" in steps(document)["require"]["note"]


# -- introspection-only configuration ------------------------------------------------------


def introspection_env(issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch, **more: str) -> None:
    variables = {
        "ENDPOINT": issuer.introspection_endpoint,
        "CLIENT_ID": "test-client",
        "CLIENT_SECRET": "test-secret",
    } | more
    for suffix, value in variables.items():
        monkeypatch.setenv(f"BEARERGUARD_INTROSPECTION_{suffix}", value)


def test_an_introspected_bound_token_is_explained_at_its_binding(
    local_issuer: LocalIssuer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The answer's cnf binds the token (RFC 7662 §2.2, RFC 9449 §6.2): alone, it is refused.
    introspection_env(local_issuer, monkeypatch)
    key = DPoPKey("ES256")
    code, document = check_json(capsys, local_issuer.mint_opaque(dpop_jkt=key.jkt))
    assert code == 1
    assert document["verdict"]["step"] == "binding"
    assert document["verdict"]["reason"] == "DPOP_DOWNGRADE"
    assert key.jkt in next(s for s in document["steps"] if s["name"] == "binding")["detail"]


def test_introspection_only_introspects_and_shows_the_answer_redacted(
    local_issuer: LocalIssuer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    introspection_env(local_issuer, monkeypatch)
    token = local_issuer.mint_opaque(scope="orders.read", api_key="k-123", password="hunter2")
    code, out, err = check(capsys, token)
    assert code == 0, out + err
    assert "verdict    VALID" in out
    assert f"introspect {local_issuer.introspection_endpoint}" in out
    assert "claims     (the introspection answer)" in out
    assert f"POST {local_issuer.introspection_endpoint} -> 200" in out
    for secret in (token, "test-secret", "k-123", "hunter2"):
        assert secret not in out and secret not in err
    code, document = check_json(capsys, token, "--require", "orders.read")
    assert code == 0
    assert document["source"] == "introspection"
    assert document["claims"]["password"] == "[redacted]"
    assert document["introspection"]["client_id"] == "test-client"
    assert [s["status"] for s in document["steps"]].count("failed") == 0
    assert [s["name"] for s in document["steps"]] == [
        "size", "parse", "endpoint", "answer", "active", "members", "iss", "aud",
        "exp", "nbf", "iat", "scopes", "binding", "require",
    ]  # fmt: skip
    assert "cache" in document["notes"][0]  # a running server may answer from its cache


def _answer(issuer: LocalIssuer, case: str) -> str:
    if case == "revoked":
        token = issuer.mint_opaque()
        issuer.revoke(token)
        return token
    extras: dict[str, dict[str, Any]] = {
        "active": {},
        "expired": {"expires_in": -3600},
        "other audience": {"aud": "api://billing"},
        "other issuer": {"iss": "https://elsewhere.example"},
        "client_id not a string": {"client_id": "c", "sub": 5},
        "scope not a string": {"scope": None, "scp": 7},
        "nbf in the future": {"nbf": int(time.time()) + 3600},
    }
    return issuer.mint_opaque(**extras[case])


INTROSPECTED = [
    "active",
    "revoked",
    "expired",
    "other audience",
    "other issuer",
    "client_id not a string",
    "scope not a string",
    "nbf in the future",
]


@pytest.mark.parametrize("case", INTROSPECTED)
def test_check_and_server_agree_on_introspected_tokens(
    case: str,
    local_issuer: LocalIssuer,
    twin: Twin,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    introspection_env(
        local_issuer, monkeypatch, AUDIENCE="api://orders", ISSUER=local_issuer.issuer
    )
    token = _answer(local_issuer, case)
    server = ResourceServer.from_env()
    try:
        twin.authenticate(server, "Bearer " + token)
        expected = None
    except (InvalidTokenError, UpstreamUnavailableError) as exc:
        expected = exc.reason.name
    code, document = check_json(capsys, token)
    assert document["verdict"]["reason"] == expected, document["steps"]
    assert code == (0 if expected is None else 1)
    if expected is not None:  # the failed step is one the explainer names, not a fallback
        assert document["verdict"]["step"] != "answer" or expected == "INACTIVE"


def test_introspection_down_could_not_check(
    local_issuer: LocalIssuer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    introspection_env(local_issuer, monkeypatch)
    token = local_issuer.mint_opaque()
    local_issuer.go_down()
    code, document = check_json(capsys, token)
    assert code == 2
    assert document["verdict"]["reason"] == "UPSTREAM"
    assert steps(document)["answer"]["detail"] == "HTTP 503, body is not a JSON object"


# -- never silent: progress on stderr ------------------------------------------------------


class Timed:
    """A stderr that remembers when each line was written."""

    encoding = "utf-8"

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.lines.extend((time.monotonic(), line) for line in text.splitlines())
        return len(text)

    def flush(self) -> None:
        pass


def test_progress_names_each_fetch_before_it_waits_and_its_timeout_as_it_happens(
    local_issuer: LocalIssuer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BEARERGUARD_HTTP_TIMEOUT", "0.5")
    local_issuer.set_delay(2.0)
    timed_stderr = Timed()
    monkeypatch.setattr("sys.stderr", timed_stderr)  # here: pytest resets it between phases
    code = main(["check", local_issuer.mint(), *against(local_issuer)])
    assert code == 2
    lines = [re.sub(r"after \d+\.\d s", "after N s", line) for _, line in timed_stderr.lines]
    oidc, oauth = local_issuer.openid_configuration_url, local_issuer.oauth_metadata_url
    # One upstream deadline bounds the whole exchange (discovery and JWKS): the first URL's
    # timeout uses it up, so the second is not asked, and the log says why.
    assert lines == [
        f"bearerguard check: GET {oidc} (timeout 0.5 s) ...",
        "bearerguard check:   no answer after N s: ReadTimeout",
    ]
    times = [at for at, _ in timed_stderr.lines]
    assert times[1] - times[0] >= 0.4  # told as it happens, not at the end
    out = capsys.readouterr().out
    assert f"{oauth}: Timeout: the upstream deadline passed" in out


def test_progress_shows_urls_without_their_credentials(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    jwks = local_issuer.jwks_uri.replace("http://", "http://ops:hunter2@") + "?api_key=k1"
    code, _, err = check(capsys, local_issuer.mint(), *against(local_issuer), "--jwks-uri", jwks)
    assert code == 0
    shown = local_issuer.jwks_uri.replace("http://", "http://…@") + "?…"
    assert f"bearerguard check: GET {shown} (timeout 5 s) ...\nbearerguard check:   HTTP 200" in err
    assert "hunter2" not in err and "k1" not in err


# -- where a running server may disagree ---------------------------------------------------


def test_check_says_where_a_server_with_cached_keys_may_disagree(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = check_json(capsys, local_issuer.mint(), *against(local_issuer))
    assert code == 0
    (note,) = document["notes"]
    assert "refuses this token (UNKNOWN_KID) until it refetches" in note
    assert "10 s (min_refetch_interval)" in note

    code, out, _ = check(capsys, local_issuer.mint(headers={"kid": "gone"}), *against(local_issuer))
    assert code == 1
    assert "keeps trusting it for up to 5 min (the JWKS TTL)" in out
    assert "and 1 h more while the issuer is down" in out


def test_no_cached_keys_note_for_a_shared_secret(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "a shared secret of at least thirty-two bytes"
    monkeypatch.setenv("BEARERGUARD_SHARED_SECRET", secret)
    claims = {"iss": local_issuer.issuer, "aud": local_issuer.audience, "exp": time.time() + 300}
    token = jwt.encode(claims, secret, algorithm="HS256")
    code, document = check_json(capsys, token, *against(local_issuer), "--algorithms", "HS256")
    assert code == 0, document["steps"]
    assert document["notes"] == []


def test_a_token_that_starts_with_a_dash_is_read_after_double_dash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["check", "--json", "--", "-Sdxq-opaque"])
    out, err = capsys.readouterr()
    assert "unrecognized arguments" not in err
    assert code == 2
    assert json.loads(out)["error"].startswith("no issuer")  # read as the token, then no config
