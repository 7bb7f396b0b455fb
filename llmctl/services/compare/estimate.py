"""Before a comparison starts: what its hosted calls may cost.

Input: each case's prompt counted for each hosted model (exactly where the model's tokenizer or
the vendor's count API is known, else an estimate, labelled), times ``runs``, at the model's input
price. Output cannot be known before the answers exist: with ``max_tokens`` set it has a ceiling
(every call writing ``max_tokens`` tokens), else none. Local models cost nothing; judge calls are
not included (their prompts hold the answers, which do not exist yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmctl.domain import plural
from llmctl.errors import LlmctlError
from llmctl.services.compare.cases import Case
from llmctl.services.compare.run import CompareOptions, ModelEntry
from llmctl.services.generation import build_messages
from llmctl.services.token_counting import count_tokens
from llmctl.services.usage.accounting import format_cost
from llmctl.services.usage.pricing import cost_from_price, price_for

# Above this (USD), a comparison started on a terminal asks before it runs (--yes skips the question).
CONFIRM_ABOVE_USD = 0.10


@dataclass(frozen=True)
class ModelEstimate:
    model: str
    calls: int
    input_tokens: int
    token_source: str  # "exact", "provider", "estimate" (the least sure of the cases' counts)
    input_usd: float | None  # None: no price
    output_usd_at_most: float | None  # None: no price, or no max_tokens to bound it

    @property
    def priced(self) -> bool:
        return self.input_usd is not None


@dataclass(frozen=True)
class CostEstimate:
    models: list[ModelEstimate]
    max_tokens: int | None

    @property
    def at_least_usd(self) -> float:
        return sum(m.input_usd for m in self.models if m.input_usd is not None)

    @property
    def at_most_usd(self) -> float | None:
        """The ceiling over priced models; None when an output has no ceiling."""
        priced = [m for m in self.models if m.priced]
        if any(m.output_usd_at_most is None for m in priced):
            return None
        return sum((m.input_usd or 0.0) + (m.output_usd_at_most or 0.0) for m in priced)

    def needs_confirmation(self, threshold: float = CONFIRM_ABOVE_USD) -> bool:
        """Whether the ceiling (or, with no ceiling, the input alone) is above ``threshold``."""
        ceiling = self.at_most_usd
        return (ceiling if ceiling is not None else self.at_least_usd) > threshold

    def lines(self) -> list[str]:
        """The estimate in words, one line per model and a total."""
        shown = [f"Estimated cost before running ({_calls(self)}; judge calls not included):"]
        for m in self.models:
            head = f"  {m.model}: {plural(m.calls, 'call')}, {plural(m.input_tokens, 'input token')} ({m.token_source})"
            if m.input_usd is None:
                shown.append(f"{head}: no price, cost unknown")
                continue
            if m.output_usd_at_most is None:
                output = "output without a ceiling (set --max-tokens for one)"
            else:
                output = f"at most {format_cost(m.output_usd_at_most)} output (--max-tokens {self.max_tokens})"
            shown.append(f"{head}: {format_cost(m.input_usd)} input + {output}")
        priced = [m for m in self.models if m.priced]
        part = "" if len(priced) == len(self.models) else " for the priced models"
        ceiling = self.at_most_usd
        if not priced:
            shown.append("  Total: unknown (no price for any of them)")
        elif ceiling is not None:
            shown.append(f"  Total: at most {format_cost(ceiling)}{part}")
        else:
            shown.append(f"  Total: at least {format_cost(self.at_least_usd)}{part}, output not bounded")
        return shown


_SURENESS = ("exact", "provider", "estimate")


def estimate_cost(entries: Sequence[ModelEntry], cases: Sequence[Case], options: CompareOptions) -> CostEstimate:
    """The estimate for every hosted model that resolved (local ones are free)."""
    estimates = []
    for entry in entries:
        resolved = entry.resolved
        if resolved is None or entry.local or entry.error is not None:
            continue
        try:
            counts = [count_tokens(resolved, build_messages(case.prompt, case.system)) for case in cases]
        except LlmctlError:
            continue  # the run itself will report what is wrong with this model
        input_tokens = sum(count.tokens for count in counts) * options.runs
        sources = {count.source.value for count in counts}
        source = next((s for s in reversed(_SURENESS) if s in sources), "estimate")
        calls = len(cases) * options.runs
        price = price_for(resolved)
        max_tokens = options.params.max_tokens
        input_usd = None if price is None else cost_from_price(price, input_tokens, 0, None)
        output_usd = (
            None if price is None or max_tokens is None else cost_from_price(price, 0, max_tokens * calls, None)
        )
        estimates.append(ModelEstimate(entry.name, calls, input_tokens, source, input_usd, output_usd))
    return CostEstimate(estimates, options.params.max_tokens)


def _calls(estimate: CostEstimate) -> str:
    total = sum(m.calls for m in estimate.models)
    return f"{total} hosted call{'' if total == 1 else 's'}"
