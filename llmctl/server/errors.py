"""Failures as the client's vendor reports them: one kind here, one JSON shape per wire.

Every refusal the server makes (bad JSON, unknown model, oversized body, spent budget, missing
key) and every failure of a call becomes a :class:`WireError`; each wire module turns it into
its vendor's error body. A client never sees a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llmctl.errors import InputError, LlmctlError, MissingDependencyError, ModelNotFoundError, UsageError
from llmctl.services.usage.budget import BudgetExceededError


class Kind(StrEnum):
    INVALID = "invalid_request"
    AUTHENTICATION = "authentication"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    BUDGET = "budget"
    UPSTREAM = "upstream"  # the model's backend failed (a hosted API, a local load)
    SERVER = "server"


STATUS = {
    Kind.INVALID: 400,
    Kind.AUTHENTICATION: 401,
    Kind.NOT_FOUND: 404,
    Kind.TOO_LARGE: 413,
    Kind.BUDGET: 429,
    Kind.UPSTREAM: 502,
    Kind.SERVER: 500,
}


@dataclass(frozen=True)
class WireError(Exception):
    kind: Kind
    message: str
    param: str | None = None

    @property
    def status(self) -> int:
        return STATUS[self.kind]

    @property
    def retryable(self) -> bool:
        """Whether an SDK should try again (its default for 429 and 5xx): not for a spent budget."""
        return self.kind in (Kind.UPSTREAM, Kind.SERVER)


def from_llmctl(error: LlmctlError) -> WireError:
    """The wire's view of a failure from the services: its kind, and the message with its fix."""
    text = error.message + (f" {error.hint}" if error.hint else "")
    if isinstance(error, BudgetExceededError):
        return WireError(Kind.BUDGET, text)
    if isinstance(error, ModelNotFoundError):
        return WireError(Kind.NOT_FOUND, text, "model")
    if isinstance(error, InputError | UsageError):
        return WireError(Kind.INVALID, text)
    if isinstance(error, MissingDependencyError):
        return WireError(Kind.SERVER, text)
    return WireError(Kind.UPSTREAM, text)
