"""Measure a model the way a user will feel it: load, first token, prefill and decode speed, memory.

How each figure is taken (the same clock, ``time.perf_counter``, everywhere):

- ``import_s``: importing the backend (torch + transformers, or the vendor SDK's adapter).
- ``load_s``: ``provider.prepare()`` — tokenizer and weights for a local model, the client for an API.
- ``ttft_s``: from the call into the provider to the first generated token. Locally that is the moment
  generate() has the first token's logits (a logits processor stamps each step), so it is prefill plus
  one sampling step; for an API it is the arrival of the first non-empty text delta.
- ``prefill_tokens_per_s``: prompt tokens / ``ttft_s``.
- ``decode_tokens_per_s``: (output tokens - 1) / (end of stream - first token): every token after the
  first, including llmctl's own streaming (decoding ids to text), as a user receives them.
- Peak memory: the process's peak resident set (``getrusage``), and on a GPU
  ``torch.cuda.max_memory_allocated``.

Local prompts are token ids of exactly ``prompt_tokens`` (BOS included), and generation is greedy with
end-of-sequence suppressed until ``max_tokens`` new tokens exist, so every run decodes the same number of
tokens. An API cannot be forced: its prompt is text of about ``prompt_tokens`` tokens and the counts are
the ones the API reports (unknown when it reports none); see ``bench_hosted`` for how a server's prompt
cache is kept out of the prefill figure.
"""

from __future__ import annotations

import importlib
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from llmctl.config import DType, ModelSettings, Quantization, Settings
from llmctl.domain import (
    Completion,
    CompletionBuilder,
    FinishReason,
    GenerationParams,
    StreamEvent,
    TextDelta,
)
from llmctl.errors import ContextLengthError, UsageError
from llmctl.providers.base import Provider, ResolvedModel

Clock = Callable[[], float]
Progress = Callable[[str], None]
ProviderOpener = Callable[[ResolvedModel], Provider]

LOCAL_KIND = "huggingface"
METRICS = ("ttft_s", "prefill_tokens_per_s", "decode_tokens_per_s", "total_s")

# Varied English prose: a repeated single word would be an unrealistically easy prompt.
FILLER = (
    "The committee met on a grey Tuesday morning to review the harbour expansion plans. Engineers described "
    "the new breakwater, the dredging schedule and the cost of steel, while residents asked about noise, "
    "traffic and the old lighthouse that had guided fishing boats for more than a century. After lunch the "
    "discussion turned to tides, insurance, the migratory birds on the northern spit and the budget for "
    "the coming decade. "
)


@dataclass(frozen=True)
class BenchOptions:
    runs: int = 5
    warmup: int = 1
    prompt_tokens: int = 128
    max_tokens: int = 64
    quantize: Quantization | None = None
    dtype: DType | None = None

    def check(self) -> None:
        if self.runs < 1:
            raise UsageError("--runs must be at least 1.")
        if self.warmup < 0:
            raise UsageError("--warmup cannot be negative.")
        if self.prompt_tokens < 1 or self.max_tokens < 1:
            raise UsageError("--prompt-tokens and --max-tokens must be at least 1.")


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


@dataclass(frozen=True)
class Stat:
    median: float
    min: float
    max: float
    count: int

    def to_json(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.min, "max": self.max, "count": self.count}


def summarize(values: Iterable[float | None]) -> Stat | None:
    """Median, min and max over the known values; None when no run knew it."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return Stat(statistics.median(known), min(known), max(known), len(known))


@dataclass(frozen=True)
class Environment:
    device: str
    dtype: str | None = None
    quantization: str | None = None
    torch_threads: int | None = None
    python: str = field(default_factory=platform.python_version)
    machine: str = field(default_factory=lambda: f"{platform.system()} {platform.machine()}")


@dataclass(frozen=True)
class BenchReport:
    model: str
    provider: str
    kind: str
    options: BenchOptions
    environment: Environment
    import_s: float
    load_s: float
    runs: tuple[RunMeasurement, ...]
    peak_rss_bytes: int | None
    peak_gpu_bytes: int | None = None
    warmup_runs: tuple[RunMeasurement, ...] = ()
    recorded: int = 0  # calls written to the usage ledger (--record)
    prompt_varied: bool = False  # each timed call's prompt began differently (so no prompt cache could serve it)

    def stat(self, metric: str) -> Stat | None:
        return summarize(run.value(metric) for run in self.runs)

    def cached_share(self) -> float | None:
        """The share of the runs' prompt tokens the API reported as cached; None when it reported none."""
        known = [r for r in self.runs if r.cached_prompt_tokens is not None and r.prompt_tokens]
        if not known:
            return None
        return sum(r.cached_prompt_tokens or 0 for r in known) / sum(r.prompt_tokens or 0 for r in known)

    def prompt_cache_note(self) -> str | None:
        """How the prefill figure stands against a prompt cache, in words (hosted models only)."""
        if not self.prompt_varied:
            return None
        note = "each run's prompt began with a different line, so a prompt cache could not serve it"
        share = self.cached_share()
        if share is None:
            return note + " (the API reports no cached tokens)"
        if share == 0:
            return note + " (the API reported none cached)"
        return note + f"; yet the API reported {share:.0%} of prompt tokens cached, which inflates prefill"

    def to_json(self) -> dict[str, Any]:
        stats = {metric: self.stat(metric) for metric in METRICS}
        return {
            "model": self.model,
            "provider": self.provider,
            "kind": self.kind,
            "settings": {
                "runs": self.options.runs,
                "warmup": self.options.warmup,
                "prompt_tokens": self.options.prompt_tokens,
                "max_tokens": self.options.max_tokens,
                "quantize": self.options.quantize,
                "dtype": self.options.dtype,
            },
            "environment": dict(self.environment.__dict__),
            "import_s": self.import_s,
            "load_s": self.load_s,
            "summary": {metric: None if stat is None else stat.to_json() for metric, stat in stats.items()},
            "runs": [run.to_json() for run in self.runs],
            "warmup_runs": [run.to_json() for run in self.warmup_runs],
            "memory": {"peak_rss_bytes": self.peak_rss_bytes, "peak_gpu_bytes": self.peak_gpu_bytes},
            "recorded": self.recorded,
            "prompt_cache": {"prompt_varied_per_run": self.prompt_varied, "cached_share": self.cached_share()},
        }


def with_load_overrides(resolved: ResolvedModel, quantize: Quantization | None, dtype: DType | None) -> ResolvedModel:
    """The same model with ``--quantize``/``--dtype`` over its configured loading options."""
    if quantize is None and dtype is None:
        return resolved
    if resolved.kind != LOCAL_KIND:
        raise UsageError(
            f"--quantize and --dtype apply to local models; {resolved.display_name} is served by an API.",
            hint="Drop those flags for a hosted model.",
        )
    base = resolved.model_settings or ModelSettings(provider=resolved.provider_name, id=resolved.model_id)
    update: dict[str, Any] = {}
    if quantize is not None:
        update["quantization"] = quantize
    if dtype is not None:
        update["dtype"] = dtype
    return replace(resolved, model_settings=base.model_copy(update=update))


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


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if peak <= 0:
        return None
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


def run_bench(
    resolved: ResolvedModel,
    options: BenchOptions,
    *,
    open_provider: ProviderOpener | None = None,
    on_progress: Progress | None = None,
    clock: Clock = time.perf_counter,
) -> BenchReport:
    """Load once, warm up, then time ``options.runs`` calls. Prints nothing; ``on_progress`` hears each phase."""
    options.check()
    resolved = with_load_overrides(resolved, options.quantize, options.dtype)
    say = on_progress or (lambda _message: None)
    if open_provider is None:
        from llmctl.providers.registry import open_provider as registry_open

        open_provider = registry_open
    local = resolved.kind == LOCAL_KIND

    say("Importing the backend")
    started = clock()
    if local:
        _import_local_backend()
    provider = open_provider(resolved)
    import_s = clock() - started
    try:
        say(f"Loading {resolved.display_name}")
        if local:
            _reset_gpu_peak()
        started = clock()
        provider.prepare()
        load_s = clock() - started
        if local:
            measure = _local_measurer(provider, options, clock)
        else:
            from llmctl.services.bench_hosted import hosted_measurer

            measure = hosted_measurer(provider, options, clock)
        warmups: list[RunMeasurement] = []
        runs: list[RunMeasurement] = []
        for index in range(options.warmup):
            say(f"Warm-up {index + 1}/{options.warmup}")
            warmups.append(measure())
        for index in range(options.runs):
            say(f"Run {index + 1}/{options.runs}")
            runs.append(measure())
        environment = _local_environment(provider, options) if local else Environment(device="remote API")
        peak_gpu = _gpu_peak() if local else None
    finally:
        provider.close()
    return BenchReport(
        model=resolved.display_name,
        provider=resolved.provider_name,
        kind=resolved.kind,
        options=options,
        environment=environment,
        import_s=import_s,
        load_s=load_s,
        runs=tuple(runs),
        peak_rss_bytes=peak_rss_bytes(),
        peak_gpu_bytes=peak_gpu,
        warmup_runs=tuple(warmups),
        prompt_varied=not local,
    )


def record_runs(report: BenchReport, resolved: ResolvedModel, settings: Settings) -> tuple[BenchReport, list[str]]:
    """Write every call the benchmark made to the usage ledger as command ``bench``.

    Warm-ups too: they used tokens (and, on an API, money). Returns the report with
    ``recorded`` set, and the warnings of calls that could not be written.
    """
    from llmctl.services.accounting import record_call
    from llmctl.services.generation import GenerationResult, RunStatus, Timing
    from llmctl.services.pricing import price_for
    from llmctl.services.usage_ledger import UsageLedger

    price = price_for(resolved)
    saved = 0
    warnings: list[str] = []
    with UsageLedger() as ledger:
        for run in (*report.warmup_runs, *report.runs):
            if run.completion is None:
                continue
            result = GenerationResult(
                completion=run.completion,
                model=resolved.alias or resolved.model_id,
                provider=resolved.provider_name,
                timing=Timing(first_token_s=run.ttft_s, total_s=run.total_s),
                status=RunStatus.OK,
            )
            accounting = record_call(result, resolved, settings=settings, command="bench", price=price, ledger=ledger)
            if accounting.saved:
                saved += 1
            elif accounting.warning and accounting.warning not in warnings:
                warnings.append(accounting.warning)
    return replace(report, recorded=saved), warnings


def _import_local_backend() -> None:
    for module in ("torch", "transformers"):
        importlib.import_module(module)


def _local_measurer(provider: Provider, options: BenchOptions, clock: Clock) -> Callable[[], RunMeasurement]:
    from transformers import LogitsProcessor, LogitsProcessorList

    from llmctl.providers.hf_provider import HuggingFaceProvider

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

    def measure() -> RunMeasurement:
        steps = StepClock()
        extra = {"min_new_tokens": options.max_tokens, "logits_processor": LogitsProcessorList([steps])}
        started = clock()
        completion = consume(provider.stream_ids(ids, params, generate_kwargs=extra))
        ended = clock()
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


def consume(events: Iterable[StreamEvent], on_text: Callable[[], None] | None = None) -> Completion:
    builder = CompletionBuilder()
    for event in events:
        if on_text is not None and isinstance(event, TextDelta) and event.text:
            on_text()
        builder.add(event)
    return builder.build()


def _local_environment(provider: Provider, options: BenchOptions) -> Environment:
    import torch

    from llmctl.providers.hf_loading import LoadOptions
    from llmctl.providers.hf_provider import HuggingFaceProvider

    assert isinstance(provider, HuggingFaceProvider)
    model = provider.loaded.model
    device_map = getattr(model, "hf_device_map", None)
    devices = sorted({str(d) for d in device_map.values()}) if isinstance(device_map, dict) else []
    device = ", ".join(devices) if len(devices) > 1 else str(model.device)
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name(model.device)})"
    quantization = LoadOptions.for_model(provider.resolved).quantization
    return Environment(
        device=device,
        dtype=str(model.dtype).removeprefix("torch."),
        quantization=quantization,
        torch_threads=torch.get_num_threads(),
    )


def _reset_gpu_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _gpu_peak() -> int | None:
    import torch

    if not torch.cuda.is_available():
        return None
    peak = int(torch.cuda.max_memory_allocated())
    return peak or None
