"""`bearerguard demo`: the client-credentials flow (RFC 6749 §4.4) end to end on 127.0.0.1.

A LocalIssuer and a Starlette API behind `BearerAuthMiddleware` on free loopback ports; the
scripted client of `_demo_steps` plays against them and each step is printed as it runs.
"""

from __future__ import annotations

import json
import re
import time
from typing import TextIO

import httpx

from .._config import Issuer, JWKSPolicy
from .._config_introspection import Introspection
from .._roles import RoleResolver
from .._server import ResourceServer
from ..testing import LocalIssuer
from ._demo_steps import API_CLIENT, CLIENTS, PRIVILEGES, Client, Step, steps
from ._logcapture import LogLines, captured_log

FAULTS = {
    "introspection": "the issuer's introspection endpoint answers 500 with an HTML page",
    "jwks": "the issuer's JWKS endpoint serves a document that is not JSON",
}
_TIMEOUT = 5.0  # every HTTP call of the scripted client, in seconds: the demo never hangs


def _shown(answer: httpx.Response) -> list[tuple[str, str]]:
    """The fields worth printing: the challenge and Retry-After, and the JSON body."""
    headers = [h for h in ("WWW-Authenticate", "Retry-After") if h in answer.headers]
    shown = [(name, answer.headers[name]) for name in headers]
    if answer.content:
        shown.append(("body", json.dumps(answer.json(), separators=(",", ":"))))
    return shown


def _play(steps: list[Step], log: LogLines, out: TextIO) -> list[str]:
    """Run the steps, printing each as it goes; return the titles of those that misbehaved."""
    failed: list[str] = []
    out.write(f"{'step':<31} {'expect':>6} {'got':>4}\n")
    for number, step in enumerate(steps, 1):
        out.write(f"[{number:2}/{len(steps)}] {step.title:<23} {step.status:>6} ")
        out.flush()
        try:
            sent, answer = step.act()
        except httpx.HTTPError as exc:
            out.write(f"{'-':>4}  UNEXPECTED: {type(exc).__name__}: {exc}\n")
            failed.append(step.title)
            continue
        shown = _shown(answer)
        text = " ".join(value for _, value in shown)
        missing = [shown for shown in step.shows if shown not in text]
        ok = answer.status_code == step.status and not missing
        verdict = "ok"
        if answer.status_code != step.status:
            verdict = f"UNEXPECTED: wanted {step.status}"
        elif missing:
            verdict = f"UNEXPECTED: the answer lacks {' and '.join(missing)}"
        out.write(f"{answer.status_code:>4}  {verdict}\n")
        logged = [("log", f"{level} {message}") for level, message in log.take()]
        rows = [("sent", sent), *shown, *logged, ("why", step.why)]
        for name, value in rows:
            out.write(_row(name, value) + "\n")
        failed += [] if ok else [step.title]
    return failed


def _row(name: str, value: str) -> str:
    """One detail row, wrapped at 100 columns between words, or between the header's
    parameters and the body's members (so that no quoted value is split)."""
    if name == "WWW-Authenticate":
        pieces, glue = re.split(r'(?<="), ', value), ", "
    elif name == "body":
        pieces, glue = re.split(r',(?=")', value), ","
    else:
        pieces, glue = value.split(" "), " "
    lines = [f"        {name:<17} {pieces[0]}"]
    for piece in pieces[1:]:
        if len(lines[-1]) + len(glue) + len(piece) > 100:
            lines[-1] += glue.rstrip()
            lines.append(" " * 26 + piece)
        else:
            lines[-1] += glue + piece
    return "\n".join(lines)


def _curl_lines(issuer: LocalIssuer, api: str) -> str:
    get_token = (
        f"TOKEN=$(curl -s -u demo-client:{CLIENTS['demo-client']} -d grant_type=client_credentials"
        f" -d scope=orders.read {issuer.token_endpoint} | python3 -c "
        "'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    return "\n".join(
        [
            get_token,
            f'curl -i {api}/orders -H "Authorization: Bearer $TOKEN"',
            f'curl -i {api}/computers -H "Authorization: Bearer $TOKEN"    # 403',
            f"curl -i {api}/orders                                         # 401",
            f"curl -s {api}/.well-known/oauth-protected-resource",
            f'bearerguard check "$TOKEN" --issuer {issuer.issuer} --audience {issuer.audience}',
        ]
    )


def _verdict(failed: list[str], total: int) -> str:
    if not failed:
        return f"{total}/{total} steps behaved as expected"
    return f"FAILED: {len(failed)} of {total} steps did not behave: {', '.join(failed)}"


def _serve_until_interrupted(issuer: LocalIssuer, api: str, out: TextIO) -> None:
    out.write(f"\nBoth servers stay up until Ctrl-C. Try:\n\n{_curl_lines(issuer, api)}\n")
    out.flush()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        out.write("\nstopped\n")


def _resource_server(issuer: LocalIssuer, roles: RoleResolver) -> ResourceServer:
    return ResourceServer(
        Issuer(
            issuer=issuer.issuer,
            audience=issuer.audience,
            jwks_policy=JWKSPolicy(min_refetch_interval=0),  # so that a rotation shows at once
            roles=roles,
        ),
        introspection=Introspection(
            endpoint=issuer.introspection_endpoint,
            client_id=API_CLIENT[0],
            client_secret=API_CLIENT[1],
        ),
        dpop="allowed",  # DPoP-bound tokens need their proof; unbound bearer tokens still work
    )


def run(out: TextIO, *, serve: bool = False, fault: str | None = None) -> int:
    """Play the scripted client; 0 only if every step behaved. `serve`: then wait for Ctrl-C."""
    started = time.monotonic()
    try:
        from ._demo_app import REALM, ROUTES  # noqa: PLC0415 - needs the demo extra
        from ._demo_app import serve as serve_api  # noqa: PLC0415
    except ImportError as exc:
        out.write(f"bearerguard demo needs Starlette and uvicorn ({exc.name} is missing): "
                  "pip install 'bearerguard[demo]'\n")  # fmt: skip
        return 2
    issuer = LocalIssuer(clients={**CLIENTS, API_CLIENT[0]: API_CLIENT[1]}, token_lifetime=600)
    roles = RoleResolver(lambda role_id: PRIVILEGES.get(role_id, []), ttl=30)
    with issuer, captured_log() as log, httpx.Client(timeout=_TIMEOUT) as http:
        if fault == "introspection":
            issuer.set_introspection_body(b"<html>oops</html>", status=500)
        elif fault == "jwks":
            issuer.set_jwks_body(b"<html>oops</html>")
        try:
            with serve_api(_resource_server(issuer, roles)) as api:
                routes = "; ".join(f"{path} needs {scope!r}" for path, scope in ROUTES.items())
                out.write(
                    "bearerguard demo: client credentials end to end, over HTTP on 127.0.0.1\n"
                    f"  issuer  {issuer.issuer} (discovery, JWKS, token endpoint, introspection)\n"
                    f"  API     {api} (Starlette + BearerAuthMiddleware, realm {REALM!r})\n"
                    f"          {routes}; /health is public\n"
                )
                if fault:
                    out.write(f"  FAULT   {FAULTS[fault]} (--fault {fault})\n")
                out.write("\n")
                script = steps(Client(http, issuer, api), issuer)
                failed = _play(script, log, out)
                elapsed = time.monotonic() - started
                out.write(f"\n{_verdict(failed, len(script))} ({elapsed:.1f} s)\n")
                if serve:
                    _serve_until_interrupted(issuer, api, out)
        finally:
            roles.close()
    return 1 if failed else 0
