"""What `bearerguard check` reports: each check's outcome, in the server's order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .._errors import BearerError, UpstreamUnavailableError
from .._verifier import BINDING_STEP
from .._verifier import CLAIM_STEPS as SERVER_CLAIM_STEPS

Status = Literal["ok", "failed", "skipped"]
Refusal = BearerError | UpstreamUnavailableError
NOT_TRUSTED = "not trusted: signature not verified"
AFTER_FAILURE = "decides nothing: the server stops at the first failure"
# The server's steps that read claims (`_verifier.CLAIM_STEPS`, the binding), then the route's
# requirement.
CLAIM_STEPS = (*SERVER_CLAIM_STEPS, BINDING_STEP, "require")


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one check; `error` is what the server raises there, if it fails."""

    name: str
    status: Status
    detail: str
    error: Refusal | None = None
    note: str | None = None  # why this outcome decides nothing, if it does not


@dataclass(slots=True)
class Report:
    """Every step in the server's order; the first failed step is the verdict."""

    now: float
    token_bytes: int
    header: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None
    verified: bool = False  # the signature was checked and holds (or the AS answered)
    steps: list[Step] = field(default_factory=list)
    source: str = "jwt"  # or "introspection": the token was sent to the AS
    notes: list[str] = field(default_factory=list)  # where a running server may differ

    @property
    def failure(self) -> Step | None:
        return next((step for step in self.steps if step.status == "failed"), None)

    @property
    def exit_code(self) -> int:
        """0 valid, 1 refused, 2 could not check (the issuer's keys could not be fetched)."""
        failure = self.failure
        if failure is None:
            return 0
        return 2 if isinstance(failure.error, UpstreamUnavailableError) else 1

    def add(self, name: str, status: Status, detail: str, error: Refusal | None = None) -> None:
        note = None
        if self.failure is not None and status != "skipped":
            note = AFTER_FAILURE
        if name in CLAIM_STEPS and not self.verified:
            note = NOT_TRUSTED
        self.steps.append(Step(name, status, detail, error, note))
