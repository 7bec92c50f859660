"""Property tests of request paths against the policy table, and through both middlewares.

Oracles: a path is judged only in normal form (as `posixpath` normalises it, without a NUL and
without an encoded slash), anything else is 400; the requirement is the first rule that matches
the whole path (or the default under a protected prefix); the status is exactly 200, 400 or 403
as those say, for ASGI and for WSGI alike.
"""

from __future__ import annotations

import json
import posixpath
import re

from anyio.from_thread import BlockingPortal
from hypothesis import event, given
from hypothesis import strategies as st

from bearerguard import InvalidRequestError, PolicyTable, Requirement, Rule, ScopeGrants
from bearerguard._urls import normal_path
from bearerguard.asgi import BearerAuthMiddleware
from bearerguard.wsgi import BearerAuthWSGIMiddleware

from .conftest import asgi, ok_asgi, ok_wsgi
from .test_tokens import CLAIMS, hs256, hs_server

NAMED = st.sampled_from(["orders", "admin", "reports", "api", "r1", "...", ".a", "a.", "é"])
SEGMENTS = st.one_of(
    *[NAMED] * 16,  # mostly paths in normal form, so that most requests reach the table
    st.sampled_from(["", ".", "..", "%2F", "%2f", "a%2Fb", "%252F", "\x00", "ü%2F", ";", "?"]),
    st.text(max_size=4),
)
PATHS = st.builds(
    lambda lead, segments: lead + "/".join(segments),
    st.sampled_from(["/", "/", "/", "/", "/api/", "//", ""]),
    st.lists(SEGMENTS, max_size=5),
)
METHODS = st.sampled_from(["GET", "HEAD", "POST", "DELETE", "get", "PATCH"])
SCOPES = ("orders.read", "orders.write", "admin", "reports")

# The table under test, and the same table as plain data for the oracle.
RULES: list[tuple[frozenset[str] | None, str, frozenset[str], bool]] = [
    # (methods or None for any, pattern, scopes, all of them (True) or any of them (False))
    (frozenset({"GET", "HEAD"}), r"/orders(/[^/]+)?", frozenset({"orders.read"}), True),
    (frozenset({"POST"}), r"/orders", frozenset({"orders.write"}), True),
    (None, r"/admin(/.*)?", frozenset({"admin"}), True),
    (None, r"/reports(/[^/]+)?", frozenset({"reports", "admin"}), False),
]
TABLE = PolicyTable(
    [
        Rule(r"/orders(/[^/]+)?", Requirement.of("orders.read"), methods=["GET"]),
        Rule(r"/orders", Requirement.of("orders.write"), methods=["POST"]),
        Rule(r"/admin(/.*)?", Requirement.of("admin")),
        ScopeGrants({"reports": [r"/reports(/[^/]+)?"], "admin": [r"/reports(/[^/]+)?"]}),
    ],
    protect="/api",
)


def in_normal_form(path: str, raw: str | None) -> bool:
    """What a router that normalises paths would route to the same place, spelled the same."""
    if raw is not None and "%2f" in raw.partition("?")[0].lower():
        return False  # an encoded slash decoded into the path: two routers may disagree
    if not path.startswith("/") or path.startswith("//") or "\x00" in path:
        return False
    normal = posixpath.normpath(path)
    return path in (normal, normal + "/") and "//" not in path


def needed(method: str, path: str) -> tuple[frozenset[str], bool] | None:
    for methods, pattern, scopes, every in RULES:
        if (methods is None or method in methods) and re.fullmatch(pattern, path):
            return scopes, every
    if path == "/api" or path.startswith("/api/"):
        return frozenset(), False  # protected, and no rule: nobody may (403 naming no scope)
    return None


def expected_status(method: str, path: str, raw: str | None, granted: frozenset[str]) -> int:
    if not in_normal_form(path, raw):
        return 400
    need = needed(method, path)
    if need is None:
        return 200
    scopes, every = need
    ok = scopes <= granted if every else bool(scopes & granted)
    return 200 if ok else 403


@given(path=PATHS, raw=st.none() | PATHS)
def test_a_path_is_judged_only_in_normal_form(path: str, raw: str | None) -> None:
    try:
        judged = normal_path(path, raw)
    except InvalidRequestError:
        assert not in_normal_form(path, raw)
        return
    assert judged == path and in_normal_form(path, raw)


@given(method=METHODS, path=PATHS)
def test_the_table_gives_the_first_rule_that_matches_the_whole_path(method: str, path: str) -> None:
    requirement = TABLE.requirement_for(method, path)
    need = needed(method, path)
    if need is None:
        assert requirement is None
        return
    assert requirement is not None
    scopes, every = need
    assert (requirement.all_of, requirement.any_of) == (
        (scopes, frozenset()) if every else (frozenset(), scopes)
    )


@given(
    method=METHODS.map(str.upper),
    path=PATHS,
    encoded_slash=st.sampled_from([False, False, False, True]),
    granted=st.frozensets(st.sampled_from(SCOPES)),
)
def test_both_middlewares_answer_a_path_as_the_table_says(
    portal: BlockingPortal, method: str, path: str, encoded_slash: bool, granted: frozenset[str]
) -> None:
    raw = path.replace("/", "%2F", 1) if encoded_slash else path
    token = hs256(b'{"alg":"HS256"}', json.dumps({**CLAIMS, "scope": " ".join(granted)}).encode())
    authorization = f"Bearer {token}"
    expected = expected_status(method, path, raw, granted)
    event(f"status {expected}")

    scope = {"type": "http", "method": method, "path": path, "query_string": b""}
    scope |= {"raw_path": raw.encode(), "headers": [(b"authorization", authorization.encode())]}
    server = hs_server()
    sent = asgi(portal, BearerAuthMiddleware(ok_asgi, server, policy=TABLE), scope)
    portal.call(server.aclose)
    assert sent[0]["status"] == expected, (path, raw, sent[0])

    # WSGI: PATH_INFO is the decoded path's UTF-8 bytes as latin-1 (PEP 3333); empty for "/".
    expected = expected_status(method, path or "/", raw, granted)
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path.encode().decode("latin-1")}
    environ |= {"QUERY_STRING": "", "RAW_URI": raw, "HTTP_AUTHORIZATION": authorization}
    statuses: list[str] = []
    server = hs_server()
    middleware = BearerAuthWSGIMiddleware(ok_wsgi, server, policy=TABLE)
    middleware(environ, lambda status, headers: statuses.append(status))
    server.close()
    assert int(statuses[0].split()[0]) == expected, (path, raw, statuses)
