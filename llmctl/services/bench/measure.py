"""How ``llmctl bench`` times one call, locally and over an API; every call goes through ``calls.Call``.

See ``bench``'s module docstring for what each figure means. Local first-token time is
stamped by a logits processor (the moment generate() has the first token's logits); an
API's is the arrival of its first non-empty text delta, heard through a hook on the
event stream.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmctl.config import Settings
from llmctl.domain import (
    Completion,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Message,
    StreamEvent,
    TextDelta,
)
from llmctl.errors import ContextLengthError, UsageError
from llmctl.providers.base import Provider
from llmctl.providers.hf.fixed_run import FILLER
from llmctl.services.usage.pricing import Price

if TYPE_CHECKING:
    from llmctl.services.bench.run import BenchOptions

Clock = Callable[[], float]

# Varied English prose: a repeated single word would be an unrealistically easy prompt.
HOSTED_INSTRUCTION = "Continue the following text for as long as you can, without repeating it:\n\n"


@dataclass(frozen=True)
class RunMeasurement:
    """One timed call. Counts are None when unknown (an API that reports no usage)."""

    ttft_s: float | None
    total_s: float
    prompt_tokens: int | None
    output_tokens: int | None
    finish_reason: FinishReason
    completion: Completion | None = field(default=None, compare=False, repr=False)
    cached_prompt_tokens: int | None = None  # what an API reported as served from its prompt cache

    @property
    def prefill_tokens_per_s(self) -> float | None:
        if self.prompt_tokens is None or not self.ttft_s:
            return None
        return self.prompt_tokens / self.ttft_s

    @property
    def decode_tokens_per_s(self) -> float | None:
        if self.output_tokens is None or self.output_tokens < 2 or self.ttft_s is None:
            return None
        decode_s = self.total_s - self.ttft_s
        return (self.output_tokens - 1) / decode_s if decode_s > 0 else None

    def value(self, metric: str) -> float | None:
        value: float | None = getattr(self, metric)
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "ttft_s": self.ttft_s,
            "total_s": self.total_s,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "prefill_tokens_per_s": self.prefill_tokens_per_s,
            "decode_tokens_per_s": self.decode_tokens_per_s,
            "finish_reason": self.finish_reason.value,
            "cached_prompt_tokens": self.cached_prompt_tokens,
        }


def hosted_prompt(count: int, header: str = "") -> str:
    """Text of roughly ``count`` tokens (about 0.75 words a token for English prose), after ``header``."""
    words = FILLER.split()
    wanted = max(1, round(count * 0.75) - len((header + HOSTED_INSTRUCTION).split()))
    body = [words[i % len(words)] for i in range(wanted)]
    return header + HOSTED_INSTRUCTION + " ".join(body)


def run_header(nonce: str, call: int) -> str:
    """The line that makes call ``call``'s prompt unlike any other's from its first token.

    Servers with a prompt cache (vLLM's prefix caching, llama.cpp's slot cache, OpenAI's and
    Anthropic's prompt caching) answer a prompt they have just seen without processing it
    again, so repeating one prompt would measure the cache, not prefill. Caches match on the
    prompt's beginning, so every call's prompt begins with a line of its own.
    """
    return f"Benchmark {nonce}, call {call}.\n"


class CallMaker:
    """Makes each benchmark call a ``Call``, sharing one ledger connection and price lookup."""

    def __init__(self, settings: Settings, *, record: bool, ignore_budget: bool) -> None:
        from llmctl.services.usage.ledger import UsageLedger

        self._settings = settings
        self._record = record
        self._ignore_budget = ignore_budget
        self._ledger = UsageLedger() if record else None
        self._price: Price | None = None
        self._priced = False
        self.recorded = 0
        self.warnings: list[str] = []

    def measure(
        self, provider: Provider, request: GenerationRequest, events: Callable[[], Iterator[StreamEvent]], clock: Clock
    ) -> tuple[Completion, float, float]:
        """Run one call; returns its completion and when (by ``clock``) it started and ended."""
        from llmctl.services.calls import Call
        from llmctl.services.usage.pricing import price_for

        if not self._priced:
            self._price, self._priced = price_for(provider.resolved), True
        call = Call(
            provider,
            request,
            settings=self._settings,
            command="bench",
            ignore_budget=self._ignore_budget,
            price=self._price,
            ledger=self._ledger,
            record=self._record,
            events=events,
            prepare=False,  # run_bench loaded it, and timed that
        )
        for warning in call.warnings:
            self._warn(warning)
        try:
            with call:
                started = clock()
                for _ in call.run.deltas():
                    pass
                ended = clock()
        finally:
            outcome = call.outcome
            self.recorded += outcome.accounting.saved
            for warning in outcome.warnings:
                self._warn(warning)
        return outcome.result.completion, started, ended

    def _warn(self, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()


def local_measurer(
    provider: Provider, options: BenchOptions, clock: Clock, calls: CallMaker
) -> Callable[[], RunMeasurement]:
    """Runs of an exact prompt length and exactly ``max_tokens`` new tokens, each token's moment stamped.

    The backend does the exact part (``fixed_prompt_ids`` and ``stream_fixed``): only it knows its
    tokenizer and where its logits appear.
    """
    fixed_prompt_ids = getattr(provider, "fixed_prompt_ids", None)
    stream_fixed = getattr(provider, "stream_fixed", None)
    if fixed_prompt_ids is None or stream_fixed is None:
        raise UsageError(f"{provider.resolved.spec.label} models cannot run a local benchmark.")
    window = provider.context_window()
    if window is not None and options.prompt_tokens + options.max_tokens > window:
        raise ContextLengthError(
            options.prompt_tokens + options.max_tokens,
            window,
            model=provider.resolved.display_name,
            hint=f"Lower --prompt-tokens (now {options.prompt_tokens}) or --max-tokens (now {options.max_tokens}) "
            f"so that together they stay under {window}.",
        )
    ids: list[int] = fixed_prompt_ids(options.prompt_tokens)
    request = GenerationRequest((), GenerationParams(temperature=0, max_tokens=options.max_tokens))

    def measure() -> RunMeasurement:
        stamps: list[float] = []

        def events() -> Iterator[StreamEvent]:
            stream: Iterator[StreamEvent] = stream_fixed(ids, options.max_tokens, lambda: stamps.append(clock()))
            return stream

        completion, started, ended = calls.measure(provider, request, events, clock)
        first = stamps[0] - started if stamps else None
        return RunMeasurement(
            ttft_s=first,
            total_s=ended - started,
            prompt_tokens=completion.usage.input_tokens,
            output_tokens=completion.usage.output_tokens,
            finish_reason=completion.finish_reason,
            completion=completion,
        )

    return measure


def hosted_measurer(
    provider: Provider, options: BenchOptions, clock: Clock, calls: CallMaker, nonce: str | None = None
) -> Callable[[], RunMeasurement]:
    nonce = nonce or secrets.token_hex(4)
    params = GenerationParams(temperature=0, max_tokens=options.max_tokens)
    made = 0

    def measure() -> RunMeasurement:
        nonlocal made
        made += 1
        request = GenerationRequest(
            (Message("user", hosted_prompt(options.prompt_tokens, run_header(nonce, made))),), params
        )
        first: list[float] = []

        def on_text() -> None:
            if not first:
                first.append(clock())

        completion, started, ended = calls.measure(
            provider, request, lambda: _stamp_first_text(provider.stream(request), on_text), clock
        )
        return RunMeasurement(
            ttft_s=first[0] - started if first else None,
            total_s=ended - started,
            prompt_tokens=completion.usage.input_tokens,
            output_tokens=completion.usage.output_tokens,
            finish_reason=completion.finish_reason,
            completion=completion,
            cached_prompt_tokens=completion.usage.cached_input_tokens,
        )

    return measure


def _stamp_first_text(events: Iterable[StreamEvent], on_text: Callable[[], None]) -> Iterator[StreamEvent]:
    """The events unchanged; ``on_text`` hears each non-empty text delta as it arrives."""
    for event in events:
        if isinstance(event, TextDelta) and event.text:
            on_text()
        yield event
