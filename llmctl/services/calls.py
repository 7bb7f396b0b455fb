"""The one path every model call takes: check the budget, run, record — whatever ends the run.

``generate``, each ``chat`` turn and each ``bench`` run build a :class:`Call` and consume
``call.run.deltas()`` inside ``with call:``. Leaving the block records the call exactly once,
however it is left: the answer finished, the provider failed, the consumer's pipe closed or
its disk filled, any bug, Ctrl-C, SIGTERM or SIGHUP. The row is written with those signals
held off, so a second signal cannot cut the write in half. Recording never raises: a ledger
that cannot be written comes back as a warning in :class:`CallOutcome`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from llmctl.config import Settings
from llmctl.domain import GenerationRequest, StreamEvent
from llmctl.errors import LlmctlError
from llmctl.providers.base import Provider
from llmctl.services import interrupts
from llmctl.services.generation import GenerationResult, GenerationRun
from llmctl.services.usage.accounting import Accounting, price_only, record_call
from llmctl.services.usage.budget import check_budget
from llmctl.services.usage.ledger import UsageLedger
from llmctl.services.usage.pricing import Price, price_for


@dataclass(frozen=True)
class CallOutcome:
    """A finished call: what the model produced and what recording it made of it."""

    result: GenerationResult
    accounting: Accounting
    warnings: tuple[str, ...] = ()  # e.g. the ledger could not be written

    @property
    def cost_usd(self) -> float | None:
        return self.accounting.cost_usd


class Call:
    """One model call. Building it checks the budget (``BudgetExceededError``: nothing is called
    and nothing recorded); ``with call:`` around reading ``call.run.deltas()`` records it."""

    def __init__(
        self,
        provider: Provider,
        request: GenerationRequest,
        *,
        settings: Settings,
        command: str,
        ignore_budget: bool = False,
        conversation_id: str | None = None,
        prompt_text: str | None = None,
        price: Price | None = None,
        ledger: UsageLedger | None = None,
        record: bool = True,
        keep_text: bool = True,
        events: Callable[[], Iterator[StreamEvent]] | None = None,
        prepare: bool = True,
        client: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        resolved = provider.resolved
        self._settings = settings
        self._command = command
        self._conversation_id = conversation_id
        self._prompt_text = prompt_text
        self._price = price if price is not None else price_for(resolved)
        self._ledger = ledger
        self._record = record
        self._keep_text = keep_text
        self._client = client  # who asked `llmctl serve` for it
        self.warnings: tuple[str, ...] = tuple(
            check_budget(settings, resolved, ignore=ignore_budget, price=self._price, ledger=ledger)
        )
        self.run = GenerationRun(provider, request, clock, events=events, prepare=prepare)
        self._outcome: CallOutcome | None = None

    def __enter__(self) -> Call:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.finish(error)

    @property
    def outcome(self) -> CallOutcome:
        """The recorded call (finishing it now if the block has not ended)."""
        return self.finish()

    def finish(self, error: BaseException | None = None) -> CallOutcome:
        """Stop the stream, settle how the call ended, and record it; once, whatever is called after."""
        if self._outcome is not None:
            return self._outcome
        with interrupts.held():
            if isinstance(error, (KeyboardInterrupt, BrokenPipeError)):
                self.run.interrupted()
            elif isinstance(error, LlmctlError):
                self.run.failed(error)
            elif isinstance(error, Exception):
                self.run.failed(LlmctlError(f"{type(error).__name__}: {error}"))
            self.run.close()
            self._outcome = self._account(self.run.result())
        return self._outcome

    def _account(self, result: GenerationResult) -> CallOutcome:
        resolved = self.run.provider.resolved
        if not self._record:
            return CallOutcome(result, price_only(result, resolved, self._price))
        accounting = record_call(
            result,
            resolved,
            settings=self._settings,
            command=self._command,
            conversation_id=self._conversation_id,
            prompt_text=self._prompt_text,
            price=self._price,
            ledger=self._ledger,
            keep_text=self._keep_text,
            client=self._client,
        )
        warnings: Sequence[str] = (accounting.warning,) if accounting.warning else ()
        return CallOutcome(result, accounting, tuple(warnings))
