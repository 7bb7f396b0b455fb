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
from llmctl.services.usage.pricing import Price

if TYPE_CHECKING:
    from llmctl.services.bench.run import BenchOptions

Clock = Callable[[], float]

# Varied English prose: a repeated single word would be an unrealistically easy prompt.
FILLER = (
    "The committee met on a grey Tuesday morning to review the harbour expansion plans. Engineers described "
    "the new breakwater, the dredging schedule and the cost of steel, while residents asked about noise, "
    "traffic and the old lighthouse that had guided fishing boats for more than a century. After lunch the "
    "discussion turned to tides, insurance, the migratory birds on the northern spit and the budget for "
    "the coming decade. "
)
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


def exact_prompt_ids(tokenizer: Any, count: int, text: str = FILLER) -> list[int]:
    """Exactly ``count`` token ids: BOS (when the model has one), then prose, cut at ``count``.

    Repeating the *ids* of one encoded passage (not the text) keeps the count exact
    whatever the tokenizer merges at the seams.
    """
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    body: list[int] = list(tokenizer.encode(text, add_special_tokens=False))
    if not body:
        raise UsageError("The model's tokenizer turns the benchmark prompt into no tokens.")
    ids = list(head)
    while len(ids) < count:
        ids.extend(body)
    return ids[:count]


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
    from transformers import LogitsProcessor, LogitsProcessorList

    from llmctl.providers.hf.provider import HuggingFaceProvider

    if not isinstance(provider, HuggingFaceProvider):
        raise TypeError("a local benchmark needs the Hugging Face provider")
    loaded = provider.loaded
    window = loaded.context_window
    if window is not None and options.prompt_tokens + options.max_tokens > window:
        raise ContextLengthError(
            options.prompt_tokens + options.max_tokens,
            window,
            model=provider.resolved.display_name,
            hint=f"Lower --prompt-tokens (now {options.prompt_tokens}) or --max-tokens (now {options.max_tokens}) "
            f"so that together they stay under {window}.",
        )
    ids = exact_prompt_ids(loaded.tokenizer, options.prompt_tokens)
    params = GenerationParams(temperature=0, max_tokens=options.max_tokens)

    class StepClock(LogitsProcessor):
        """Stamps the moment each new token's logits exist (on generate()'s thread)."""

        def __init__(self) -> None:
            self.stamps: list[float] = []

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            self.stamps.append(clock())
            return scores

    request = GenerationRequest((), params)  # the prompt is ``ids``, fed through ``events``

    def measure() -> RunMeasurement:
        steps = StepClock()
        extra = {"min_new_tokens": options.max_tokens, "logits_processor": LogitsProcessorList([steps])}
        completion, started, ended = calls.measure(
            provider, request, lambda: provider.stream_ids(ids, params, generate_kwargs=extra), clock
        )
        first = steps.stamps[0] - started if steps.stamps else None
        return RunMeasurement(
            ttft_s=first,
            total_s=ended - started,
            prompt_tokens=completion.usage.input_tokens,
            output_tokens=completion.usage.output_tokens,
            finish_reason=completion.finish_reason,
            completion=completion,
        )

    return measure


def gguf_measurer(
    provider: Provider, options: BenchOptions, clock: Clock, calls: CallMaker
) -> Callable[[], RunMeasurement]:
    """llama.cpp: exactly ``--prompt-tokens`` prompt ids, exactly ``--max-tokens`` new ones (past end tokens),
    the first token stamped the moment it is sampled."""
    from llmctl.providers.llamacpp.provider import LlamaCppProvider

    if not isinstance(provider, LlamaCppProvider):
        raise TypeError("a GGUF benchmark needs the llama.cpp provider")
    window = provider.context_window()
    if window is not None and options.prompt_tokens + options.max_tokens > window:
        raise ContextLengthError(
            options.prompt_tokens + options.max_tokens,
            window,
            model=provider.resolved.display_name,
            hint=f"Lower --prompt-tokens (now {options.prompt_tokens}) or --max-tokens (now {options.max_tokens}), "
            "or raise n_ctx in [providers.llamacpp].",
        )
    ids = provider.exact_prompt_ids(options.prompt_tokens, FILLER)
    params = GenerationParams(temperature=0, max_tokens=options.max_tokens)
    request = GenerationRequest((), params)  # the prompt is ``ids``, fed through ``events``

    def measure() -> RunMeasurement:
        stamps: list[float] = []

        def events() -> Iterator[StreamEvent]:
            return provider.stream_ids(ids, params, until_max_tokens=True, on_token=lambda: stamps.append(clock()))

        completion, started, ended = calls.measure(provider, request, events, clock)
        return RunMeasurement(
            ttft_s=stamps[0] - started if stamps else None,
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
