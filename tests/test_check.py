"""`bearerguard check` against a real issuer on 127.0.0.1, in process and as a subprocess.

The agreement test is the heart: for a table of tokens, the verdict of `check` is the refusal the
ResourceServer raises (through both twins), because both run the same steps.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from bearerguard import BearerGuardError, Issuer, ResourceServer
from bearerguard.__main__ import main
from bearerguard._verifier import STEPS
from bearerguard.cli._logcapture import captured_log
from bearerguard.cli._timefmt import duration, relative
from bearerguard.testing import DPoPKey, LocalIssuer, client_certificate

from .conftest import Twin
from .io.test_hostile_input import HOSTILE
from .io.test_url_redaction import assert_hidden, shown, with_secrets

Factory = Callable[..., LocalIssuer]


@pytest.fixture(autouse=True)
def _no_bearerguard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BEARERGUARD_"):
            monkeypatch.delenv(name)


def check(capsys: pytest.CaptureFixture[str], token: str | None, *flags: str) -> tuple[int, str]:
    """`bearerguard check` with the token after "--", as the help says: a random opaque token
    may start with "-" (base64url), and would then be read as an option."""
    code = main(["check", *flags, *(("--", token) if token is not None else ())])
    return code, capsys.readouterr().out


def check_json(
    capsys: pytest.CaptureFixture[str], token: str | None, *flags: str
) -> tuple[int, dict[str, Any]]:
    code, out = check(capsys, token, *flags, "--json")
    return code, json.loads(out)


def against(issuer: LocalIssuer) -> list[str]:
    return ["--issuer", issuer.issuer, "--audience", issuer.audience]


def steps(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in document["steps"]}


def line(out: str, name: str) -> str:
    return next(row for row in out.splitlines() if row.split()[1:2] == [name])


def signature_of(token: str) -> str:
    return token.rsplit(".", 1)[1]


# -- the five tokens of the issue, as text and as JSON ------------------------------------------


def test_valid_token_text(local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]) -> None:
    token = local_issuer.mint(scope="orders.read orders.write")
    code, out = check(capsys, token, *against(local_issuer))
    assert code == 0
    assert "verdict    VALID" in out
    for name in ("size", "parse", "header", "issuer", "algorithm", "keys", "kid", "key"):
        assert line(out, name).lstrip().startswith("✓"), name
    for name in ("signature", "required", "iss", "aud", "exp", "nbf", "iat", "scopes"):
        assert line(out, name).lstrip().startswith("✓"), name
    assert "orders.read orders.write (from scope)" in line(out, "scopes")
    assert "expires in 4 min" in line(out, "exp")
    assert f"GET {local_issuer.jwks_uri} -> 200" in out
    assert "claims     (verified)" in out
    assert token not in out
    assert signature_of(token) not in out


def test_valid_token_json(local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]) -> None:
    token = local_issuer.mint(scope=["a", "b"])
    code, document = check_json(capsys, token, *against(local_issuer))
    assert code == document["exit_code"] == 0
    assert document["verdict"]["valid"] is True
    assert document["claims_verified"] is True
    assert document["claims"]["scope"] == ["a", "b"]
    assert all(step["status"] != "failed" for step in document["steps"])
    assert [step["name"] for step in document["steps"]] == [
        "size", "parse", "header", "issuer", "algorithm", "type", "keys", "kid", "key",
        "signature", "required", "iss", "aud", "exp", "nbf", "iat", "max age", "scopes",
        "binding",
    ]  # fmt: skip
    # The server's own list, in its order ("values" only when Issuer.claim_values is set).
    assert [step["name"] for step in document["steps"]] == [s for s in STEPS if s != "values"]
    assert [e["status"] for e in document["http"]] == [200, 200]  # discovery, then the JWKS
    assert signature_of(token) not in json.dumps(document)


def test_expired_token(local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]) -> None:
    token = local_issuer.mint(expires_in=-(2 * 3600 + 3 * 60))
    code, out = check(capsys, token, *against(local_issuer))
    assert code == 1
    exp = line(out, "exp")
    assert exp.lstrip().startswith("✗")
    assert "expired 2 h 3 min ago" in exp
    assert "UTC" in exp
    assert "<-- first failure: EXPIRED, invalid_token" in exp
    assert "verdict    REFUSED at exp: EXPIRED" in out
    assert 'HTTP 401, error="invalid_token"' in out

    code, document = check_json(capsys, token, *against(local_issuer))
    assert code == 1
    assert document["verdict"] == {
        "valid": False,
        "step": "exp",
        "reason": "EXPIRED",
        "description": "The access token has expired.",
        "status": 401,
        "error": "invalid_token",
    }


def test_wrong_audience(local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]) -> None:
    token = local_issuer.mint(audience="api://other", expires_in=-3600)
    code, out = check(capsys, token, *against(local_issuer))
    assert code == 1
    assert "'api://other' is not this resource" in line(out, "aud")
    assert "first failure: AUDIENCE" in line(out, "aud")
    # Later claim checks still run for information, and say they decide nothing.
    assert line(out, "exp").lstrip().startswith("✗")
    assert "first failure" not in line(out, "exp")
    assert "(decides nothing: the server stops at the first failure)" in out

    code, document = check_json(capsys, token, *against(local_issuer))
    assert (code, document["verdict"]["reason"], document["verdict"]["step"]) == (
        1,
        "AUDIENCE",
        "aud",
    )
    assert steps(document)["exp"]["note"] is not None
    assert steps(document)["aud"]["note"] is None


def test_unknown_kid(local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]) -> None:
    token = local_issuer.mint(headers={"kid": "retired-key"})
    code, out = check(capsys, token, *against(local_issuer))
    assert code == 1
    assert "kid 'retired-key' is not among the published keys" in line(out, "kid")
    assert local_issuer.kid("RS256") in line(out, "kid")
    assert "claims     (NOT TRUSTED: signature not verified)" in out
    assert "(not trusted: signature not verified)" in out

    code, document = check_json(capsys, token, *against(local_issuer))
    assert document["verdict"]["reason"] == "UNKNOWN_KID"
    assert document["claims_verified"] is False
    assert steps(document)["signature"]["status"] == "skipped"
    assert steps(document)["exp"]["note"] == "not trusted: signature not verified"


@pytest.mark.parametrize(
    ("token", "cause"),
    [
        ("abc.def", "not three non-empty base64url segments"),
        ("e30.e30.", "not three non-empty base64url segments"),
        ("eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "invalid JSON"),
        ("eyJhbGciOiJSUzI1NiIsImprdSI6Imh0dHA6Ly94In0.e30.c2ln", "refused: jku"),
    ],
)
def test_malformed_token(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str], token: str, cause: str
) -> None:
    code, out = check(capsys, token, *against(local_issuer))
    assert code == 1
    assert cause in out
    assert "first failure: " in out

    code, document = check_json(capsys, token, *against(local_issuer))
    assert document["verdict"]["reason"] in ("MALFORMED", "UNSUPPORTED_HEADER")
    assert local_issuer.count() == 0  # refused before any key is fetched, as the server does


@pytest.mark.parametrize("mode", ["refuse", "error"])
def test_issuer_down_exits_2(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str], mode: Any
) -> None:
    token = local_issuer.mint()
    local_issuer.go_down(mode)
    code, out = check(capsys, token, *against(local_issuer))
    assert code == 2
    assert "could not fetch the keys" in line(out, "keys")
    assert "verdict    COULD NOT CHECK at keys: UPSTREAM" in out
    assert "HTTP 503" in out
    assert ("no answer" if mode == "refuse" else "-> 503") in out

    code, document = check_json(capsys, token, *against(local_issuer))
    assert code == document["exit_code"] == 2
    assert document["verdict"]["reason"] == "UPSTREAM"
    assert document["verdict"]["status"] == 503


# -- check and the server agree ------------------------------------------------------------------


def _swap_signature(issuer: LocalIssuer) -> str:
    one, other = issuer.mint(scope="a"), issuer.mint(scope="b")
    return one.rsplit(".", 1)[0] + "." + signature_of(other)


def _expired_with_bad_signature(issuer: LocalIssuer) -> str:
    expired = issuer.mint(expires_in=-3600)
    return expired.rsplit(".", 1)[0] + "." + signature_of(issuer.mint())


TOKENS: dict[str, Callable[[LocalIssuer], str]] = {
    "valid": lambda i: i.mint(scope="orders.read"),
    "expired": lambda i: i.mint(expires_in=-3600),
    "wrong aud": lambda i: i.mint(audience="api://other"),
    "unknown kid": lambda i: i.mint(headers={"kid": "nobody"}),
    "bad signature": _swap_signature,
    "alg none": lambda i: i.mint(alg="none"),
    "malformed": lambda i: "not.a-token",
    "unknown issuer": lambda i: i.mint(issuer="https://evil.test"),
    "missing exp": lambda i: i.mint(expires_in=None),
    "nbf in the future": lambda i: i.mint(nbf=int(time.time()) + 3600),
    "iat in the future": lambda i: i.mint(iat=int(time.time()) + 3600),
    "HS256 not allowed": lambda i: i.mint(alg="HS256"),
    "key of another type": lambda i: i.mint(alg="ES256", headers={"kid": i.kid("RS256")}),
    "refused header": lambda i: i.mint(headers={"x5u": "https://evil.test/cert"}),
    "scope of a wrong type": lambda i: i.mint(scope="a", scp={"not": "scopes"}),
    "sub of a wrong type": lambda i: i.mint(subject=None, sub=42),
    "too large": lambda i: i.mint(padding="x" * 9000),
    # Bound tokens, sent alone as check sends them: the binding step (RFC 9449 §7.2, RFC 8705).
    "DPoP-bound": lambda i: i.mint(dpop_jkt=DPoPKey("ES256").jkt),
    "certificate-bound": lambda i: i.mint(x5t_s256=client_certificate("client").x5t_s256),
    "unknown confirmation": lambda i: i.mint(cnf={"jwk": DPoPKey("ES256").jwk}),
    "cnf of a wrong type": lambda i: i.mint(cnf="bound"),
    "empty cnf": lambda i: i.mint(cnf={}),
    # Several failures: the first in the server's order decides, so these pin the order.
    "DPoP-bound and expired": lambda i: i.mint(dpop_jkt=DPoPKey("ES256").jkt, expires_in=-3600),
    "expired for another API": lambda i: i.mint(audience="api://other", expires_in=-3600),
    "expired and not yet valid": lambda i: i.mint(expires_in=-3600, nbf=int(time.time()) + 3600),
    "bad signature and expired": _expired_with_bad_signature,
}


@pytest.mark.parametrize("case", list(TOKENS))
def test_check_and_server_agree(
    case: str, local_issuer: LocalIssuer, twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    token = TOKENS[case](local_issuer)
    server = ResourceServer(Issuer(issuer=local_issuer.issuer, audience=local_issuer.audience))
    try:
        twin.verify(server, token)
        refused = None
    except BearerGuardError as exc:
        refused = exc.reason.name  # type: ignore[attr-defined]

    code, document = check_json(capsys, token, *against(local_issuer))

    assert document["verdict"]["reason"] == refused
    assert code == (0 if refused is None else 1)
    assert (refused is None) == (case in ("valid", "empty cnf"))


def test_agreement_with_max_age_and_rfc9068(
    local_issuer: LocalIssuer, twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Issuer(
        issuer=local_issuer.issuer,
        audience=local_issuer.audience,
        max_token_age=60,
        rfc9068=True,
    )
    flags = [*against(local_issuer), "--max-token-age", "60", "--rfc9068"]
    for token, reason in [
        (local_issuer.mint(iat=int(time.time()) - 3600), "TOO_OLD"),
        (local_issuer.mint(typ="JWT"), "TYPE"),
        (local_issuer.mint(omit=["jti"]), "MISSING_CLAIM"),
    ]:
        with pytest.raises(BearerGuardError) as info:
            twin.verify(ResourceServer(config), token)
        assert info.value.reason.name == reason  # type: ignore[attr-defined]
        _, document = check_json(capsys, token, *flags)
        assert document["verdict"]["reason"] == reason


def test_a_bound_token_is_explained_at_its_binding(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    key = DPoPKey("ES256")
    code, out = check(capsys, local_issuer.mint(dpop_jkt=key.jkt), *against(local_issuer))
    assert code == 1
    binding = line(out, "binding")
    assert binding.lstrip().startswith("✗") and "<-- first failure: DPOP_DOWNGRADE" in binding
    assert f"bound to a DPoP key (cnf.jkt {key.jkt!r})" in out and "proof signed by" in out
    assert 'HTTP 401, error="invalid_token"' in out
    certificate = client_certificate("client")
    token = local_issuer.mint(x5t_s256=certificate.x5t_s256)
    code, document = check_json(capsys, token, *against(local_issuer))
    assert code == 1 and document["verdict"]["reason"] == "CERT_BINDING"
    assert certificate.x5t_s256 in steps(document)["binding"]["detail"]
    code, document = check_json(capsys, local_issuer.mint(), *against(local_issuer))
    assert code == 0
    unbound = steps(document)["binding"]
    assert (unbound["status"], unbound["detail"]) == ("ok", "not bound (no cnf): a bearer token")


# -- configuration: flags, environment, metadata URL, JWKS URI ----------------------------------


def test_configuration_from_env_and_flags_override_it(
    local_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BEARERGUARD_ISSUER", local_issuer.issuer)
    monkeypatch.setenv("BEARERGUARD_AUDIENCE", "api://somebody-else")
    token = local_issuer.mint(expires_in=-60)  # expired 60 s ago: inside a 120 s leeway

    code, document = check_json(capsys, token)
    assert document["verdict"]["reason"] == "AUDIENCE"

    code, document = check_json(capsys, token, "--audience", local_issuer.audience)
    assert document["verdict"]["reason"] == "EXPIRED"

    code, document = check_json(
        capsys, token, "--audience", "x", "--audience", local_issuer.audience, "--leeway", "120"
    )
    assert code == 0
    assert document["issuers"][0]["audience"] == ["x", local_issuer.audience]
    assert document["issuers"][0]["leeway"] == 120


def test_several_issuers_from_env(
    local_issuer_factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = local_issuer_factory(), local_issuer_factory(path="/second")
    monkeypatch.setenv("BEARERGUARD_ISSUERS", "one two")
    for name, issuer in (("ONE", first), ("TWO", second)):
        monkeypatch.setenv(f"BEARERGUARD_{name}_ISSUER", issuer.issuer)
        monkeypatch.setenv(f"BEARERGUARD_{name}_AUDIENCE", issuer.audience)
    code, document = check_json(capsys, second.mint())
    assert code == 0
    assert len(document["issuers"]) == 2
    assert first.count() == 0  # the token's iss picked the issuer before any fetch


def test_issuer_flag_over_several_issuers_from_env_reports_no_unknown_variable(
    local_issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --issuer replaces BEARERGUARD_ISSUERS; the named issuers' variables go with it.
    monkeypatch.setenv("BEARERGUARD_ISSUERS", "one")
    monkeypatch.setenv("BEARERGUARD_ONE_ISSUER", "https://idp.test/one")
    monkeypatch.setenv("BEARERGUARD_ONE_AUDIENCE", "api://one")
    code, document = check_json(capsys, local_issuer.mint(), *against(local_issuer))
    assert code == 0
    assert not [entry for entry in document["log"] if "unknown" in entry]


def test_unknown_variable_is_shown_in_the_log(
    local_issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BEARERGUARD_ALGORITHM", "RS256")
    code, document = check_json(capsys, local_issuer.mint(), *against(local_issuer))
    assert code == 0
    assert any(
        "BEARERGUARD_ALGORITHM (did you mean BEARERGUARD_ALGORITHMS?)" in entry
        for entry in document["log"]
    )


def test_issuer_given_as_its_metadata_url(
    local_issuer_factory: Factory, capsys: pytest.CaptureFixture[str]
) -> None:
    issuer = local_issuer_factory(path="/tenant", discovery="oauth")
    code, document = check_json(
        capsys, issuer.mint(), "--issuer", issuer.oauth_metadata_url, "--audience", issuer.audience
    )
    assert code == 0
    assert document["issuers"][0]["issuer"] == issuer.issuer
    assert document["issuers"][0]["discovery_urls"] == [issuer.oauth_metadata_url]
    assert issuer.count("openid-configuration") == 0


def test_jwks_uri_without_issuer_takes_iss_from_the_token(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    token = local_issuer.mint()
    code, document = check_json(
        capsys, token, "--jwks-uri", local_issuer.jwks_uri, "--audience", local_issuer.audience
    )
    assert code == 0
    assert steps(document)["issuer"]["status"] == "skipped"
    assert "--issuer checks it" in steps(document)["issuer"]["detail"]
    assert local_issuer.count() == local_issuer.count("jwks") == 1


def test_metadata_naming_another_issuer_could_not_check(
    local_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = local_issuer.issuer + "/other"
    monkeypatch.setenv("BEARERGUARD_DISCOVERY_URL", local_issuer.openid_configuration_url)
    code, out = check(capsys, local_issuer.mint(issuer=other), "--issuer", other, "--audience", "x")
    assert code == 2
    assert "metadata names a different issuer" in line(out, "keys")
    assert "COULD NOT CHECK" in out


def test_hs256_secret_and_credential_claims_are_never_printed(
    local_issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "a shared secret of at least thirty-two bytes"
    monkeypatch.setenv("BEARERGUARD_SHARED_SECRET", secret)
    claims = {
        "iss": local_issuer.issuer,
        "aud": local_issuer.audience,
        "exp": int(time.time()) + 300,
        "client_secret": "hunter2-hunter2",
        "profile": {"pwd": "x1"},
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    flags = [*against(local_issuer), "--algorithms", "HS256"]
    code, out = check(capsys, token, *flags)
    assert code == 0
    assert "shared secret" in line(out, "keys")
    code, document = check_json(capsys, token, *flags)
    assert document["claims"]["client_secret"] == "[redacted]"
    assert document["claims"]["profile"] == {"pwd": "[redacted]"}
    assert document["issuers"][0]["shared_secret"] is True
    for text in (out, json.dumps(document)):
        assert secret not in text
        assert "hunter2" not in text
        assert signature_of(token) not in text
    assert local_issuer.count() == 0


@pytest.mark.parametrize("issuer_up", [True, False], ids=["up", "down"])
@pytest.mark.parametrize("keys_from", ["--jwks-uri", "BEARERGUARD_DISCOVERY_URL"])
def test_urls_are_printed_without_their_credentials(
    local_issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    keys_from: str,
    issuer_up: bool,
) -> None:
    # Real HTTP to URLs carrying userinfo, a query and a fragment; down, the URL also reaches
    # the log lines and the failed step, through the library's own messages.
    if keys_from == "--jwks-uri":
        url, flags = local_issuer.jwks_uri, ["--jwks-uri", with_secrets(local_issuer.jwks_uri)]
    else:
        url, flags = local_issuer.openid_configuration_url, []
        monkeypatch.setenv(keys_from, with_secrets(url))
    token = local_issuer.mint()
    if not issuer_up:
        local_issuer.go_down("error", 503)

    code, out = check(capsys, token, *against(local_issuer), *flags)
    json_code, document = check_json(capsys, token, *against(local_issuer), *flags)

    assert code == json_code == (0 if issuer_up else 2)
    assert_hidden(out)
    assert_hidden(json.dumps(document))
    assert f"GET {shown(url)} -> {200 if issuer_up else 503}" in out
    assert document["http"][0]["url"] == shown(url)
    configured = document["issuers"][0]
    assert [configured["jwks_uri"], *configured["discovery_urls"]].count(shown(url)) == 1
    if not issuer_up:
        assert f"{shown(url)}: HTTP 503" in line(out, "keys")
        assert any(f"{shown(url)}: HTTP 503" in entry for entry in document["log"])


def test_a_refused_url_is_named_without_its_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://idp.example/keys"  # plain http to a host that is not loopback
    argv = ["t", "--issuer", "https://idp.example", "--audience", "a", "--jwks-uri"]
    assert main(["check", *argv, with_secrets(url), "--json"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert repr(shown(url)) in error
    assert "must be an https URL" in error
    assert_hidden(captured.out + captured.err)


# -- input and bad arguments ---------------------------------------------------------------------


@pytest.mark.parametrize("token", ["-", None])
def test_token_from_stdin(
    token: str | None,
    local_issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(local_issuer.mint() + "\n"))
    code, _ = check(capsys, token, *against(local_issuer))
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["token"], "no issuer"),
        (["token", "--issuer", "https://idp.test"], "BEARERGUARD_AUDIENCE is required"),
        (["", "--issuer", "https://i.test", "--audience", "a"], "the token is empty"),
        (["t", "--issuer", "https://i.test", "--audience", "a", "--algorithms", "none"], "none"),
        (["t", "--issuer", "http://idp.example", "--audience", "a"], "https URL"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", *argv]) == 2
    assert message in capsys.readouterr().err
    assert main(["check", *argv, "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 2
    assert message in document["error"]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "t", "--leeway", "-5"])
    assert info.value.code == 2
    assert "non-negative number of seconds" in capsys.readouterr().err


# -- the real command ----------------------------------------------------------------------------


def run_command(issuer: LocalIssuer, *argv: str, stdin: str | None = None) -> Any:
    """`python -m bearerguard check` as a user runs it, without our BEARERGUARD_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEARERGUARD_")}
    command = [sys.executable, "-m", "bearerguard", "check", *against(issuer), *argv]
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        command,
        input=stdin,
        env=env | {"PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_m_bearerguard_check(local_issuer: LocalIssuer) -> None:
    valid = run_command(local_issuer, local_issuer.mint())
    assert valid.returncode == 0, valid.stderr
    assert "verdict    VALID" in valid.stdout

    expired = run_command(local_issuer, "--json", stdin=local_issuer.mint(expires_in=-3600))
    assert expired.returncode == 1, expired.stderr
    assert json.loads(expired.stdout)["verdict"]["reason"] == "EXPIRED"

    local_issuer.go_down("refuse")
    down = run_command(local_issuer, local_issuer.mint())
    assert down.returncode == 2
    assert "COULD NOT CHECK" in down.stdout


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59.9, "59 s"), (299, "4 min 59 s"), (7380, "2 h 3 min"), (259205, "3 d")],
)
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == duration(-seconds) == text
    assert relative(-seconds) == f"{text} ago"
    assert relative(seconds) == (f"in {text}" if seconds else "0 s ago")


def test_unusable_keys_are_named_in_the_log(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    kid = local_issuer.kid("RS256")
    usable = [jwk for jwk in local_issuer.jwks()["keys"] if jwk["kid"] != kid]
    # One unusable key under the token's kid, beside usable ones: a JWKS with no usable key
    # at all is a failed fetch (the last good keys stay), not an unknown kid.
    local_issuer.set_jwks_body(
        json.dumps({"keys": [{"kty": "oct", "kid": kid, "k": "c2"}, *usable]}).encode()
    )
    code, out = check(capsys, local_issuer.mint(), *against(local_issuer))
    assert code == 1
    assert f"kid '{kid}' is not among the published keys" in line(out, "kid")
    assert f"skipping JWK kid='{kid}'" in out
    assert "unsupported kty 'oct'" in out


def test_log_capture_takes_bearerguards_lines_and_restores_the_logger() -> None:
    # check and demo share this capture; what a command prints of the log comes from it.
    logger = logging.getLogger("bearerguard")
    before = (logger.level, logger.propagate, list(logger.handlers))
    with captured_log() as lines:
        logging.getLogger("bearerguard.jwks").warning("one %s", "x")
        logging.getLogger("bearerguard").debug("below INFO: not captured")
        logging.getLogger("elsewhere").warning("not bearerguard's")
        assert lines.take() == [("WARNING", "one x")]
        logging.getLogger("bearerguard.discovery").info("two")
        assert lines.take() == [("INFO", "two")]
        assert lines.take() == []
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_tokens_fail_at_parse(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    # Huge integers and deep nesting (issue 13): a verdict at the parse step, not a traceback.
    token = HOSTILE[case](local_issuer)
    code, out = check(capsys, token, *against(local_issuer))
    assert code == 1
    assert "<-- first failure: MALFORMED, invalid_token" in line(out, "parse")
    assert ("too many digits" if "integer" in case else "nested more than 64 deep") in out
    assert all(segment not in out for segment in token.split("."))
    code, document = check_json(capsys, token, *against(local_issuer))
    assert (code, document["verdict"]["step"], document["claims"]) == (1, "parse", None)


def test_a_malformed_jwk_beside_good_keys_leaves_the_token_valid(
    local_issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    # A list where a JWK member must be a string (issue 13): that key is skipped and named in
    # the log; the token's own key, in the same JWKS, verifies it.
    bad = {"kty": ["RSA"], "kid": "broken", "alg": ["RS256"]}
    local_issuer.set_jwks_body(json.dumps({"keys": [bad, *local_issuer.jwks()["keys"]]}).encode())
    code, out = check(capsys, local_issuer.mint(), *against(local_issuer))
    assert code == 0
    assert "verdict    VALID" in out
    assert "skipping JWK kid='broken'" in out and "kty is not a string" in out
