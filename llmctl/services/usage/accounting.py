"""After every model call: price it and write it to the usage ledger.

:class:`llmctl.services.calls.Call` calls :func:`record_call` once per call, whatever
happened (ok, error, interrupted); commands do not call it themselves. Recording never
fails the command: a ledger that cannot be written comes back as ``Accounting.warning``
for the CLI to print on stderr.

The row names the model by provider and model id (an alias is recorded as its target), so
``usage --by model`` shows one row per model a provider served, whatever it was called.
A call that never reached a model (not in the cache, no API key, prompt refused) has
token source ``not_applicable``: no tokens were used, and none are unknown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from llmctl.config import Settings
from llmctl.providers.base import ResolvedModel
from llmctl.services.generation import GenerationResult
from llmctl.services.usage.ledger import NOT_APPLICABLE, LedgerError, LedgerRecord, UsageLedger
from llmctl.services.usage.pricing import Cost, Price, price_for, price_usage, unknown_price_hint
from llmctl.services.usage.report import format_cost

__all__ = ["Accounting", "build_record", "cost_of", "format_cost", "price_only", "record_call"]


@dataclass(frozen=True)
class Accounting:
    """What recording one call produced.

    ``record`` is the row (with its ``id`` when it was saved). ``cost`` is ``None`` when
    the price or a needed token count is unknown; ``price_hint`` then says how to set a
    price (``None`` when only the counts were missing). ``warning`` is set when the row
    could not be written: print it, do not fail.
    """

    record: LedgerRecord
    cost: Cost | None
    saved: bool
    warning: str | None = None
    price_hint: str | None = None

    @property
    def cost_usd(self) -> float | None:
        return None if self.cost is None else self.cost.usd


def record_call(
    result: GenerationResult,
    resolved: ResolvedModel,
    *,
    settings: Settings,
    command: str,
    conversation_id: str | None = None,
    prompt_text: str | None = None,
    price: Price | None = None,
    ledger: UsageLedger | None = None,
    keep_text: bool = True,
    client: str | None = None,
) -> Accounting:
    """Price ``result`` and append it to the ledger; never raises for a ledger failure.

    ``resolved`` is the model the call went to (for its price). ``prompt_text`` is stored
    only when ``[usage] store_text = true`` (the answer text too); never any API key.
    ``price`` skips the price lookup (a chat session can look it up once with
    ``pricing.price_for``). ``keep_text=False`` (a ``chat --no-save``) stores no text even
    with ``store_text``. ``ledger`` defaults to the one under ``$LLMCTL_HOME``; it is
    closed here only when this function opened it.
    """
    cost, hint = cost_of(result, resolved, price)
    record = build_record(
        result,
        model=resolved.recorded_id,
        command=command,
        cost=cost,
        conversation_id=conversation_id,
        prompt_text=prompt_text if settings.usage.store_text and keep_text else None,
        response_text=result.completion.text if settings.usage.store_text and keep_text else None,
        client=client,
    )
    own = ledger is None
    target = UsageLedger() if ledger is None else ledger
    try:
        saved = target.record(record)
    except LedgerError as exc:
        warning = f"Usage not recorded: {exc}. {exc.hint}"
        return Accounting(record, cost, saved=False, warning=warning, price_hint=hint)
    except Exception as exc:  # recording must never fail the call it records
        warning = f"Usage not recorded: {type(exc).__name__}: {exc}."
        return Accounting(record, cost, saved=False, warning=warning, price_hint=hint)
    finally:
        if own:
            target.close()
    return Accounting(saved, cost, saved=True, price_hint=hint)


def price_only(result: GenerationResult, resolved: ResolvedModel, price: Price | None = None) -> Accounting:
    """What ``record_call`` would return, without writing the row (recording switched off)."""
    cost, hint = cost_of(result, resolved, price)
    record = build_record(result, model=resolved.recorded_id, command="", cost=cost)
    return Accounting(record, cost, saved=False, price_hint=hint)


def cost_of(
    result: GenerationResult, resolved: ResolvedModel, price: Price | None = None
) -> tuple[Cost | None, str | None]:
    """The call's cost, and when it is unknown for want of a price, how to set one."""
    if not result.reached_model:
        return None, None
    price = price if price is not None else price_for(resolved)
    if price is None:
        return None, unknown_price_hint(resolved)
    return price_usage(resolved, result.completion.usage, price), None


def build_record(
    result: GenerationResult,
    *,
    command: str,
    cost: Cost | None,
    model: str | None = None,
    conversation_id: str | None = None,
    prompt_text: str | None = None,
    response_text: str | None = None,
    ended_at: float | None = None,
    client: str | None = None,
) -> LedgerRecord:
    """The ledger row for ``result`` (``ts`` is when the call started; ``model`` defaults to the result's)."""
    usage = result.completion.usage
    ended = time.time() if ended_at is None else ended_at
    price = cost.price if cost is not None else None
    return LedgerRecord(
        ts=ended - result.timing.total_s,
        command=command,
        provider=result.provider,
        model=_storable(model if model is not None else result.model) or "",
        status=result.status.value,
        token_source=usage.source.value if result.reached_model else NOT_APPLICABLE,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cost_usd=None if cost is None else cost.usd,
        price_input_per_mtok=None if price is None else price.input_per_mtok,
        price_output_per_mtok=None if price is None else price.output_per_mtok,
        price_source=None if price is None else price.source.value,
        first_token_s=result.timing.first_token_s,
        total_s=result.timing.total_s,
        error=None if result.error is None else _storable(result.error.message),
        conversation_id=conversation_id,
        prompt_text=_storable(prompt_text),
        response_text=_storable(response_text),
        client=_storable(client),
    )


def _storable(text: str | None) -> str | None:
    """Text SQLite can store: a non-UTF-8 argument reaches us as lone surrogates, which it refuses."""
    if text is None:
        return None
    try:
        raw = text.encode("utf-8", errors="surrogateescape")  # back to the bytes the user typed
    except UnicodeEncodeError:
        raw = text.encode("utf-8", errors="replace")
    return raw.decode("utf-8", errors="replace")
