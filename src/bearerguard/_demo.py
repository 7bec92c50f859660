"""`bearerguard demo`: a local issuer on 127.0.0.1, a resource server, and scripted tokens."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TextIO

from ._config import Issuer
from ._errors import BearerGuardError
from ._jwks import JWKSPolicy
from ._scopes import Requirement
from ._server import ResourceServer
from .testing import LocalIssuer

Step = tuple[str, Callable[[], str], str]


def run(out: TextIO) -> int:
    """Play the scripted steps; return 0 only if every step behaved as expected."""
    logging.getLogger("bearerguard").setLevel(logging.ERROR)  # the table tells the story
    with LocalIssuer(algorithms=("RS256", "ES256", "EdDSA")) as issuer:
        server = ResourceServer(
            Issuer(
                issuer=issuer.issuer,
                audience=issuer.audience,
                jwks_policy=JWKSPolicy(min_refetch_interval=0),
            )
        )
        need = Requirement.of("orders.read")

        def call(token: str) -> str:
            try:
                access = server.authenticate(f"Bearer {token}")
                need.check(access)
            except BearerGuardError as exc:
                code = getattr(exc, "error", None) or "no error code"
                return f"{getattr(exc, 'status_code', '?')} {code}: {exc}"
            return f"200 ok: client {access.client_id}, scopes {' '.join(sorted(access.scopes))}"

        def rotated() -> str:
            kid = issuer.rotate("RS256", keep_old=False)
            return call(issuer.mint(kid=kid, scope="orders.read"))

        steps: list[Step] = [
            ("RS256 token with orders.read", lambda: call(issuer.mint(scope="orders.read")), "200"),
            (
                "ES256 token with orders.read",
                lambda: call(issuer.mint(alg="ES256", scope="orders.read")),
                "200",
            ),
            (
                "EdDSA token with orders.read",
                lambda: call(issuer.mint(alg="EdDSA", scope="orders.read")),
                "200",
            ),
            ("token without the scope", lambda: call(issuer.mint(scope="orders.write")), "403"),
            (
                "expired token",
                lambda: call(issuer.mint(scope="orders.read", expires_in=-120)),
                "401",
            ),
            (
                "token for another API",
                lambda: call(issuer.mint(scope="orders.read", audience="api://other")),
                "401",
            ),
            ("unsigned token (alg none)", lambda: call(issuer.mint(alg="none")), "401"),
            ("after a key rotation", rotated, "200"),
        ]
        failures = 0
        out.write(f"bearerguard demo: local issuer at {issuer.issuer}\n\n")
        out.write(f"{'step':<34} {'expected':<9} result\n{'-' * 34} {'-' * 9} {'-' * 40}\n")
        for title, action, expected in steps:
            result = action()
            ok = result.startswith(expected)
            failures += not ok
            out.write(f"{title:<34} {expected:<9} {result}{'' if ok else '   <-- UNEXPECTED'}\n")
        server.close()
    out.write(f"\n{len(steps) - failures}/{len(steps)} steps behaved as expected\n")
    return 1 if failures else 0
