"""Test helpers: session keys for every algorithm, and a raw signer that can forge any token.

PyJWT's `encode` cannot produce duplicate members, odd base64 or forbidden headers, so negative
tests build tokens here byte by byte and sign them with PyJWT's algorithm objects.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms
from starlette.testclient import TestClient

from bearerguard import ResourceServer
from bearerguard._flow import Fetch, Fetched, FetchFailed, Outcome

ALGORITHMS = get_default_algorithms()
ASYMMETRIC = ("RS256", "PS256", "ES256", "EdDSA")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def generate(alg: str) -> Any:
    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "ES512":
        return ec.generate_private_key(ec.SECP521R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


def public_jwk(private_key: Any, alg: str, kid: str, **extra: Any) -> dict[str, Any]:
    family = {"RS": "RS256", "PS": "RS256", "ES": "ES256"}.get(alg[:2], "EdDSA")
    jwk = ALGORITHMS[family].to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", **extra}


def sign_raw(header: bytes, payload: bytes, key: Any, alg: str) -> str:
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = ALGORITHMS[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


@dataclass
class Signer:
    """One private key per algorithm, with kids, and the JWKS that publishes them."""

    keys: dict[str, Any]

    @classmethod
    def generate(cls, algorithms: tuple[str, ...] = ASYMMETRIC) -> Signer:
        return cls({alg: generate(alg) for alg in algorithms})

    def kid(self, alg: str) -> str:
        return f"{alg.lower()}-1"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k, alg, self.kid(alg)) for alg, k in self.keys.items()]}

    def sign(
        self,
        claims: dict[str, Any],
        alg: str = "RS256",
        *,
        header: dict[str, Any] | None = None,
        key_alg: str | None = None,
    ) -> str:
        """Sign `claims`; `header` overrides the default header; `key_alg` picks another key."""
        default = {"alg": alg, "typ": "JWT", "kid": self.kid(key_alg or alg)}
        head = default if header is None else {**default, **header}
        head = {k: v for k, v in head.items() if v is not None}
        return sign_raw(dumps(head), dumps(claims), self.keys[key_alg or alg], alg)


def drive(flow: Generator[Fetch, Outcome, Any], *outcomes: Outcome) -> tuple[Any, list[Fetch]]:
    """Run a flow, answering its fetches with `outcomes` in order; return its value and fetches."""
    fetches: list[Fetch] = []
    answers = iter(outcomes)
    try:
        fetch = next(flow)
        while True:
            fetches.append(fetch)
            fetch = flow.send(next(answers))
    except StopIteration as done:
        return done.value, fetches


def fetched(document: dict[str, Any], status: int = 200, max_age: float | None = None) -> Fetched:
    return Fetched(status, document, max_age)


FAILED = FetchFailed("ConnectError")


def b64url_decode_for_tests(segment: bytes) -> bytes:
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def aclose_on(client: TestClient, server: ResourceServer) -> None:
    """Close `server`'s async HTTP client on the event loop the TestClient ran the app on."""
    assert client.portal is not None, "call inside the TestClient's `with` block"
    client.portal.call(server.aclose)
