"""DPoP (RFC 9449) at the resource server: what `ResourceServer(dpop=...)` adds around a token.

`SenderCheck` holds the policy and the replay store, and makes the request-level steps, in the
order of RFC 9449 §4.3 and §7 (see `_dpop`'s module docstring):

1. `proof`: with the `DPoP` scheme, the request's one proof, checked against its method, its URL
   as the server saw it and the token (`ath`), before the token is verified;
2. the token is verified, or found in the verified-token cache (the server does this);
3. `bind`: the token's `cnf` (from the JWT or the introspection answer) against the proof's key
   (`check_binding`): a DPoP-bound token needs the DPoP scheme (§7.2), and the DPoP scheme a
   DPoP-bound token;
4. `record`/`arecord`: last, the proof's `jti` is added to the replay store (atomic add-if-absent,
   kept for the proof's lifetime), so that a proof refused for another reason does not use it up.
   A store that cannot answer fails closed: a 503, never an acceptance (a replay could otherwise
   pass on another replica), unless `DPoPPolicy(replay_outage="local")` lets the process's own
   tier decide while a shared store is down. An in-process store (`MemoryStore`, the default)
   that had to evict a `jti` before its proof expired (more proofs within one proof lifetime
   than `replay_entries`) cannot tell a proof as old from a replay: such a proof is refused
   (`DPOP_REPLAY_WINDOW`), a fresh one is not, so the check stays exact and only the proofs'
   usable age shrinks while the store is over its size.

A proof changes on every request, so steps 1, 3 and 4 run on verified-token cache hits too; the
header-only fast path (`ResourceServer._cached`) serves no token this check would judge.
"""

from __future__ import annotations

from typing import Literal

from ._binding import check_binding
from ._credentials import Credentials
from ._dpop import DPoPPolicy, DPoPProof, verify_proof
from ._errors import (
    ConfigurationError,
    DPoPMissingTokenError,
    InvalidDPoPProofError,
    Reason,
    UpstreamUnavailableError,
    UseDPoPNonceError,
)
from ._nonce import Nonces
from ._store import MemoryStore, Store, StoreError, TieredStore
from ._token import AccessToken

DPoPMode = Literal["off", "allowed", "required"]

# Seconds a `jti` is kept beyond its proof's last usable instant: the store's timer and our
# clock are read at slightly different times.
_MARGIN = 1.0


def sender_check(dpop: DPoPMode | DPoPPolicy, store: Store | None) -> SenderCheck | None:
    """The check `ResourceServer(dpop=..., dpop_store=...)` makes, None for `"off"`."""
    if isinstance(dpop, DPoPPolicy):
        policy = dpop
    elif dpop in ("allowed", "required"):
        policy = DPoPPolicy(required=dpop == "required")
    elif dpop == "off":
        if store is not None:
            raise ConfigurationError("dpop_store needs dpop= enabled", field="dpop_store")
        return None
    else:
        raise ConfigurationError(
            f'dpop must be "off", "allowed", "required" or a DPoPPolicy, got {dpop!r}',
            field="dpop",
        )
    if store is not None and not isinstance(store, Store):
        raise ConfigurationError("dpop_store must be a Store", field="dpop_store")
    return SenderCheck(policy, store if store is not None else MemoryStore(policy.replay_entries))


class SenderCheck:
    """The DPoP steps of one server (see the module docstring); pure but for the store."""

    __slots__ = ("algs", "nonces", "policy", "schemes", "store")

    def __init__(self, policy: DPoPPolicy, store: Store) -> None:
        self.policy = policy
        self.store = store
        # Server nonces (RFC 9449 §9), one window per proof lifetime.
        self.nonces = Nonces(policy.nonce_secret, policy.max_age) if policy.require_nonce else None
        self.algs = tuple(policy.algorithms)
        self.schemes: tuple[str, ...] = ("DPoP",) if policy.required else ("Bearer", "DPoP")

    def missing(self) -> DPoPMissingTokenError:
        """No credentials of an accepted scheme: a 401 challenging each accepted scheme."""
        return DPoPMissingTokenError(algs=self.algs, bearer=not self.policy.required)

    def proof(self, credentials: Credentials, now: float) -> DPoPProof | None:
        """Step 1: the proof of a `DPoP` request (None for the Bearer scheme)."""
        if credentials.scheme != "DPoP":
            return None
        nonces = self.nonces
        try:
            return verify_proof(
                credentials.proofs,
                method=credentials.method or "",  # no context (a bare header): no proof either
                url=credentials.url or "",
                access_token=credentials.token,
                policy=self.policy,
                now=now,
                nonce_ok=None if nonces is None else lambda nonce: nonces.ok(nonce, now),
            )
        except UseDPoPNonceError as exc:  # the client retries with this one (RFC 9449 §9)
            exc.nonce = None if nonces is None else nonces.issue(now)
            raise

    def bind(self, access: AccessToken, credentials: Credentials, proof: DPoPProof | None) -> None:
        """Step 3: the token's `cnf` against the proof's key and the request's client
        certificate (RFC 8705 §3). An unbound token's claims are not read (its `_bound` mark,
        set as it was verified, says so)."""
        cnf = access.claims.get("cnf") if access._bound else None
        check_binding(cnf, proof, credentials.certificate, credentials.scheme, algs=self.algs)

    def record(self, proof: DPoPProof, now: float) -> None:
        """Step 4 (sync twin): the `jti` is recorded, or the proof is a replay."""
        entry = self._entry(proof, now)
        local, shared = self._local(entry)
        if local is False or shared is None:
            return self._judge(local)
        try:
            added = shared.add(*entry)
        except StoreError as exc:
            return self._judge(self._outage(exc, local))
        return self._judge(added)  # the shared store's verdict: it saw every replica's

    async def arecord(self, proof: DPoPProof, now: float) -> None:
        """Step 4 (async twin)."""
        entry = self._entry(proof, now)
        local, shared = self._local(entry)
        if local is False or shared is None:
            return self._judge(local)
        try:
            added = await shared.aadd(*entry)
        except StoreError as exc:
            return self._judge(self._outage(exc, local))
        return self._judge(added)  # the shared store's verdict: it saw every replica's

    def _local(self, entry: tuple[str, bytes, float]) -> tuple[bool | None, Store | None]:
        """The in-process verdict on the `jti` (`MemoryStore.add_unseen`: None when that store
        may have forgotten one as old), and the shared store still to ask, if any: the store
        itself, or a `TieredStore`'s shared tier after its local one (as `TieredStore.add`).
        A replay seen locally needs no round trip; otherwise the shared store decides, and the
        local verdict stands in for it only during an outage, with `replay_outage="local"`."""
        store = self.store
        if type(store) is MemoryStore:
            return store.add_unseen(*entry), None
        if isinstance(store, TieredStore):
            return store.local.add_unseen(*entry), store.shared
        return True, store

    def _judge(self, added: bool | None) -> None:
        """Refuse a replay (False), or a proof the store cannot tell from one (None)."""
        if not added:
            reason = Reason.DPOP_REPLAYED if added is False else Reason.DPOP_REPLAY_WINDOW
            raise InvalidDPoPProofError(reason, algs=self.algs)

    def _outage(self, exc: StoreError, local: bool | None) -> bool | None:
        """The shared replay store did not answer: a 503, or with `replay_outage="local"` the
        local tier's verdict (`local`, judged before the shared store was asked)."""
        if self.policy.replay_outage == "local" and isinstance(self.store, TieredStore):
            return local
        raise _unavailable() from exc

    @staticmethod
    def _entry(proof: DPoPProof, now: float) -> tuple[str, bytes, float]:
        # Per key: a jti is the client's choice, unique among its own proofs (RFC 9449 §11.1).
        # Kept until the proof would be refused as too old anyway.
        return f"jti:{proof.jkt}:{proof.jti}", b"1", proof.usable_until - now + _MARGIN


def _unavailable() -> UpstreamUnavailableError:
    exc = UpstreamUnavailableError("the DPoP replay store")
    exc.reason = Reason.DPOP_STORE
    return exc
