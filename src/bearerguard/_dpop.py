"""DPoP (RFC 9449): checking a proof against its request.

`verify_proof` makes every check of RFC 9449 §4.3 but one, in the RFC's order, on a proof the
client sent in the `DPoP` header; `_binding.check_binding` then checks that the access token is
bound to the proof's key (`cnf.jkt`, RFC 9449 §6) or to the client certificate
(`cnf["x5t#S256"]`, RFC 8705 §3). Both are pure: no I/O, no clock (`now` is passed in), no state
but bounded memos of decoded proof headers and normalised request URLs. What a caller does, in
this order:

1. `proof = verify_proof(...)` (an `InvalidDPoPProofError` or `UseDPoPNonceError` if not);
2. verify the access token as usual, then `check_binding(token's cnf, proof, ...)`;
3. last, replay (RFC 9449 §11.1): add `proof.jti` to a shared store with add-if-absent, kept
   until `proof.usable_until`; if it was there (or may have been: `_sender`), refuse. Last, so
   that a proof refused for any other reason does not use up its `jti`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, NoReturn

from ._b64json import NOT_BASE64URL, TO_STANDARD, json_object, segment
from ._errors import (
    ConfigurationError,
    InvalidDPoPProofError,
    Reason,
    UseDPoPNonceError,
)
from ._htu import normalize_htu, strip_query
from ._keys import KEY_TYPES, Key, import_jwk
from ._thumbprint import THUMBPRINT_MEMBERS, b64url, jwk_members, members_thumbprint
from ._validate import strings

TYP = "dpop+jwt"  # RFC 9449 §4.2, checked exactly (§11.5)
# Asymmetric JWS algorithms only (RFC 9449 §4.2, §11.6): never `none`, never a MAC.
DEFAULT_ALGORITHMS = tuple(alg for alg in KEY_TYPES if KEY_TYPES[alg][0] != "oct")
_ASYMMETRIC = frozenset(DEFAULT_ALGORITHMS)
# 96 random bits are 16 base64url characters and a UUID is 36 (RFC 9449 §4.2); a long jti only
# costs the replay store memory (§11.1 asks servers to refuse one).
MAX_JTI_LENGTH = 128
_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,512}")  # RFC 9449 §8.1: 1*NQCHAR, bounded
_PROOF_KEYS = 1024  # proof headers remembered, keys imported (a client reuses its key)


@dataclass(frozen=True, slots=True)
class DPoPPolicy:
    """What a resource server accepts of a DPoP proof.

    `max_age` and `leeway` bound the proof's `iat` (RFC 9449 §11.1): at most `max_age` seconds
    in the past (60 s: a proof is made just before its request, so this covers the request's
    transit and a client clock a little behind, while keeping the replay store's window short)
    and at most `leeway` seconds in the future (5 s: a proof from the future means a client clock
    ahead of ours, and a long allowance lets proofs be made ahead of time, §11.2; clients with
    worse clocks are what server nonces are for). `max_proof_bytes` is checked before any work:
    4096 fits a proof with an RSA-4096 key (~2.3 KB) and refuses RSA-8192 keys, whose
    verification costs ~15 times an RSA-2048 one. `require_nonce` refuses proofs without a nonce
    that the caller's `nonce_ok` accepts (RFC 9449 §9, §11.3). For `ResourceServer(dpop=...)`:
    `required` refuses the Bearer scheme (else both are accepted), `replay_entries` sizes the
    default in-process replay store (the proofs accepted within one `max_age` + `leeway`),
    `nonce_secret` keys the server's nonces (`_nonce`; share it across replicas), and
    `replay_outage` says what a shared replay store that cannot answer means: `"refuse"` (a 503,
    the default) or `"local"` (the process's own tier decides: a replay to this replica is still
    refused, one to another replica is not caught until the store is back).
    """

    algorithms: Sequence[str] = DEFAULT_ALGORITHMS
    max_age: float = 60.0
    leeway: float = 5.0
    max_proof_bytes: int = 4096
    require_nonce: bool = False
    required: bool = False
    replay_entries: int = 100_000
    nonce_secret: bytes | None = field(default=None, repr=False, compare=False)
    replay_outage: Literal["refuse", "local"] = "refuse"
    _allowed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        algorithms = tuple(dict.fromkeys(strings(self.algorithms, "algorithms")))
        refused = [alg for alg in algorithms if alg not in _ASYMMETRIC]
        if refused or not algorithms:
            raise ConfigurationError(
                f"algorithms must be asymmetric JWS algorithms of {', '.join(DEFAULT_ALGORITHMS)}"
                f" (never none or HS*), got {refused or 'none'}",
                field="algorithms",
            )
        for name in ("max_age", "leeway"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 <= value < math.inf:
                raise ConfigurationError(f"{name} must be a non-negative number", field=name)
        for name in ("max_proof_bytes", "replay_entries"):
            if type(getattr(self, name)) is not int or getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be a positive integer", field=name)
        if self.nonce_secret is not None and (
            type(self.nonce_secret) is not bytes or len(self.nonce_secret) < 32
        ):
            raise ConfigurationError("nonce_secret must be 32 bytes or more", field="nonce_secret")
        if self.replay_outage not in ("refuse", "local"):
            raise ConfigurationError('replay_outage must be "refuse" or "local"', field="dpop")
        for name in ("require_nonce", "required"):
            if type(getattr(self, name)) is not bool:
                raise ConfigurationError(f"{name} must be True or False", field=name)
        object.__setattr__(self, "algorithms", algorithms)
        object.__setattr__(self, "_allowed", frozenset(algorithms))


class DPoPProof(NamedTuple):
    """A DPoP proof that passed `verify_proof`: what binding and replay checks need.

    A named tuple rather than a frozen dataclass: one is built per request, and a tuple is built
    several times faster (as `_jose.UnverifiedJWT`).
    """

    jkt: str  # the RFC 7638 thumbprint of the proof's key, to compare with the token's cnf.jkt
    jti: str  # for the replay store, until `usable_until`
    iat: float
    usable_until: float  # iat + the policy's max_age: after this, the proof is refused anyway
    htm: str
    htu: str  # normalised
    nonce: str | None
    key: Key  # the public key the proof was signed with


# The request URLs of one API repeat; `htu` values, the client's text, are not remembered.
_normal_url = functools.lru_cache(maxsize=1024)(normalize_htu)


class _Refused(Exception):
    """Why a proof was refused, for logs (`__cause__`); never quotes the proof."""


def verify_proof(
    proofs: Sequence[str],
    *,
    method: str,
    url: str,
    access_token: str | None,
    policy: DPoPPolicy,
    now: float,
    nonce_ok: Callable[[str], bool] | None = None,
) -> DPoPProof:
    """Check the `DPoP` header values of one request (RFC 9449 §4.3, in its order).

    `method` is the request's method, `url` the URL as the client addressed it (scheme, host
    and port as sent; any query is ignored), `access_token` the token sent with the request, or
    None at a token endpoint (then `ath` is not required). `now` is the wall-clock time in
    seconds. With `policy.require_nonce`, `nonce_ok(nonce)` says whether this server issued the
    nonce recently. Replay (§11.1) is the caller's last step (see the module docstring).

    Raises `InvalidDPoPProofError` (`invalid_dpop_proof`) or `UseDPoPNonceError`
    (`use_dpop_nonce`), each carrying the policy's algorithms for the DPoP challenge.
    """
    algs = policy.algorithms

    def refuse(reason: Reason, why: str) -> NoReturn:
        raise InvalidDPoPProofError(reason, algs=algs) from _Refused(why)

    if policy.require_nonce and nonce_ok is None:
        raise ConfigurationError("require_nonce needs a nonce_ok checker", field="nonce_ok")
    # 1. One DPoP header field, with one value (a folded "a, b" fails the JWS syntax in 2).
    if len(proofs) != 1:
        refuse(Reason.DPOP_MULTIPLE if proofs else Reason.DPOP_MISSING, f"{len(proofs)} proofs")
    proof = proofs[0]
    if not isinstance(proof, str):
        refuse(Reason.DPOP_MALFORMED, "not a string")
    if len(proof) > policy.max_proof_bytes:
        refuse(Reason.DPOP_TOO_LARGE, "over max_proof_bytes")
    # 2. A well-formed JWS, parsed as strictly as an access token.
    header, claims, signing_input, signature = _parse(proof, refuse)
    # 3. The required claims (RFC 9449 §4.2), of the right types.
    jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
    ath, nonce = claims.get("ath"), claims.get("nonce")
    if type(jti) is not str or not 0 < len(jti) <= MAX_JTI_LENGTH:
        refuse(Reason.DPOP_CLAIM, "jti")
    if type(htm) is not str or type(htu) is not str:
        refuse(Reason.DPOP_CLAIM, "htm or htu")
    if type(iat) is not int and type(iat) is not float:  # bool is neither
        refuse(Reason.DPOP_CLAIM, "iat")
    if access_token is not None and type(ath) is not str:
        refuse(Reason.DPOP_CLAIM, "ath")
    if nonce is not None and (type(nonce) is not str or not _NONCE.fullmatch(nonce)):
        refuse(Reason.DPOP_CLAIM, "nonce")
    # 4. Explicitly typed (RFC 9449 §11.5: no other JWT passes for a proof).
    if header.fields.get("typ") != TYP:
        refuse(Reason.DPOP_TYPE, "typ")
    # 5. An asymmetric algorithm the policy allows.
    alg = header.fields.get("alg")
    if type(alg) is not str or alg not in policy._allowed:
        refuse(Reason.DPOP_ALGORITHM, "alg")
    # 7 (before 6, which needs the key). A public key that fits the algorithm.
    key, jkt = _proof_key(header, alg, refuse)
    # 6. The signature, with that key.
    if not key.verify(alg, signing_input, signature):
        refuse(Reason.DPOP_SIGNATURE, "signature")
    # 8. The request's method (case-sensitive, RFC 9110 §9.1).
    if htm != method:
        refuse(Reason.DPOP_METHOD, "htm")
    # 9. The request's URL without query and fragment, after RFC 3986 §6.2.2-6.2.3 normalisation.
    # The request's URL is normalised once per URL (a memo); an `htu` of the same text needs no
    # normalising (the usual case: the client signed the URL it used).
    normal = _normal_url(url)
    if normal is None or (
        htu != url and strip_query(htu) != strip_query(url) and normalize_htu(htu) != normal
    ):
        refuse(Reason.DPOP_URL, "htu")
    # 10. The server's nonce, when it asks for one (RFC 9449 §9; §11.3: never accept none then).
    if nonce is None:
        if policy.require_nonce:
            raise UseDPoPNonceError(Reason.DPOP_NONCE, algs=algs) from _Refused("no nonce")
    elif nonce_ok is not None and not nonce_ok(nonce):
        raise UseDPoPNonceError(Reason.DPOP_NONCE, algs=algs) from _Refused("nonce not ours")
    # 11. Made recently (RFC 9449 §11.1).
    if iat < now - policy.max_age:
        refuse(Reason.DPOP_TOO_OLD, "iat too old")
    if iat > now + policy.leeway:
        refuse(Reason.DPOP_IN_FUTURE, "iat in the future")
    # 12, first half. For this access token (RFC 9449 §4.2, §7). The second half, the token's
    # binding to this key, is `check_binding`.
    if access_token is not None and ath != access_token_hash(access_token):
        refuse(Reason.DPOP_ATH, "ath")
    return DPoPProof(jkt, jti, iat, iat + policy.max_age, htm, normal, nonce, key)


def access_token_hash(access_token: str) -> str:
    """`ath`: base64url SHA-256 of the token's ASCII bytes (RFC 9449 §4.2)."""
    return b64url(hashlib.sha256(access_token.encode()).digest())


class _Header(NamedTuple):
    """A proof's decoded JOSE header, with its `jwk` imported (None if it is not usable)."""

    fields: dict[str, Any]
    key: Key | None
    jkt: str | None


def _parse(
    proof: str, refuse: Callable[[Reason, str], NoReturn]
) -> tuple[_Header, dict[str, Any], bytes, bytes]:
    """Header, claims, signing input and signature of a compact JWS (as `_jose.parse` reads it)."""
    try:
        raw = proof.encode("ascii")
    except UnicodeEncodeError:
        refuse(Reason.DPOP_MALFORMED, "not ASCII")
    parts = raw.split(b".")
    if len(parts) != 3:
        refuse(Reason.DPOP_MALFORMED, "not three segments")
    head, payload, signature = parts
    try:
        header = _header(head)
        claims = json_object(_base64url(payload))
        signature = _base64url(signature)
    except (ValueError, RecursionError):  # _jose's errors are ValueErrors, as is a huge integer
        refuse(Reason.DPOP_MALFORMED, "a segment is not base64url JSON")
    # RFC 7515 §4.1.11: `crit` names extensions we do not understand (`b64` among them).
    if "crit" in header.fields or "b64" in header.fields:
        refuse(Reason.DPOP_MALFORMED, "crit or b64")
    return header, claims, raw[: len(head) + len(payload) + 1], signature


def _base64url(part: bytes) -> bytes:
    """A non-empty, canonical, unpadded base64url segment decoded; `ValueError` if not one."""
    standard = part.translate(TO_STANDARD, NOT_BASE64URL)
    if not standard or len(standard) != len(part):
        raise ValueError("not base64url")
    return segment(standard)


@functools.lru_cache(maxsize=_PROOF_KEYS)
def _header(segment: bytes) -> _Header:
    """A proof's header decoded and its key imported: a memo of a pure function, bounded and
    thread-safe. A client sends the same header, key included, with every proof, and importing
    the key costs about half an RSA verification. A malformed header raises `ValueError` (and is
    not remembered); the returned `fields` are shared, and never changed."""
    fields = json_object(_base64url(segment))
    jwk = fields.get("jwk")
    if type(jwk) is not dict:
        return _Header(fields, None, None)
    try:
        members = jwk_members(jwk)  # refuses private members (RFC 9449 §4.3 step 7)
        key = import_jwk(dict(zip(THUMBPRINT_MEMBERS[members[1]], members, strict=True)))
    except ValueError:
        return _Header(fields, None, None)
    return _Header(fields, key, members_thumbprint(members))


def _proof_key(
    header: _Header, alg: str, refuse: Callable[[Reason, str], NoReturn]
) -> tuple[Key, str]:
    """The proof's public key and thumbprint, refused unless it is public and fits `alg`."""
    if header.key is None or header.jkt is None:
        refuse(Reason.DPOP_KEY, "jwk missing, private, or not a usable public key")
    own_alg = header.fields["jwk"].get("alg")
    if not header.key.accepts(alg) or (own_alg is not None and own_alg != alg):
        refuse(Reason.DPOP_KEY, "jwk does not fit alg")
    return header.key, header.jkt
