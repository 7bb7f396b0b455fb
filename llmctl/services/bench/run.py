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
the ones the API reports (unknown when it reports none).
"""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from llmctl.config import Settings
from llmctl.errors import UsageError
from llmctl.provider_specs import DType, Quantization
from llmctl.providers.base import Provider, ResolvedModel
from llmctl.providers.hf.fixed_run import exact_prompt_ids
from llmctl.services.bench.measure import (
    CallMaker,
    RunMeasurement,
    hosted_measurer,
    hosted_prompt,
    local_measurer,
)

__all__ = ["BenchOptions", "BenchReport", "RunMeasurement", "exact_prompt_ids", "hosted_prompt", "run_bench"]

Clock = Callable[[], float]
Progress = Callable[[str], None]
ProviderOpener = Callable[[ResolvedModel], Provider]

METRICS = ("ttft_s", "prefill_tokens_per_s", "decode_tokens_per_s", "total_s")


@dataclass(frozen=True)
class BenchOptions:
    runs: int = 5
    warmup: int = 1
    prompt_tokens: int = 128
    max_tokens: int = 64
    quantize: Quantization | None = None
    dtype: DType | None = None
    compile: bool = False  # static cache + torch.compile (--compile); the config's compile = true also counts

    def check(self) -> None:
        if self.runs < 1:
            raise UsageError("--runs must be at least 1.")
        if self.warmup < 0:
            raise UsageError("--warmup cannot be negative.")
        if self.prompt_tokens < 1 or self.max_tokens < 1:
            raise UsageError("--prompt-tokens and --max-tokens must be at least 1.")


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
class CompileFacts:
    """torch.compile in a benchmark: seconds spent compiling (torch's timer; None: unknown) and in which runs."""

    seconds: float | None
    cache_dir: str
    in_warmup: bool  # False: --warmup 0, so the first timed run paid for it

    def to_json(self) -> dict[str, Any]:
        return {"compile_s": self.seconds, "cache_dir": self.cache_dir, "in_warmup": self.in_warmup}


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
    warnings: tuple[str, ...] = ()  # budget warnings, and why a call could not be recorded
    prompt_varied: bool = False  # each timed call's prompt began differently (so no prompt cache could serve it)
    compile: CompileFacts | None = None  # when decoding was compiled: how long compiling took, where it is cached

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
                "compile": self.options.compile,
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
            "compile": None if self.compile is None else self.compile.to_json(),
        }


def with_load_overrides(
    resolved: ResolvedModel, quantize: Quantization | None, dtype: DType | None, *, compile: bool = False
) -> ResolvedModel:
    """The same model with ``--quantize``/``--dtype``/``--compile`` over its configured loading options."""
    if quantize is None and dtype is None and not compile:
        return resolved
    if not resolved.spec.local:
        given = (("--quantize", quantize), ("--dtype", dtype), ("--compile", compile))
        flags = [name for name, value in given if value]
        raise UsageError(
            f"{', '.join(flags)}: options that apply to local models; {resolved.display_name} is served by an API.",
            hint="Drop those flags for a hosted model.",
        )
    if resolved.spec.model_files != "hf":
        raise UsageError(
            f"--quantize and --dtype apply to transformers models; {resolved.display_name} is stored quantized "
            "as it runs.",
            hint="Pick another of the repo's files instead (-m llamacpp/ORG/REPO:Q4_K_M).",
        )
    return resolved.with_load_options(quantization=quantize, dtype=dtype, compile=compile or None)


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
    settings: Settings | None = None,
    record: bool = False,
    ignore_budget: bool = False,
) -> BenchReport:
    """Load once, warm up, then time ``options.runs`` calls. Prints nothing; ``on_progress`` hears each phase.

    Every call goes through the one call path (``calls.Call``): the budget is checked before it, and
    with ``record`` it is written to the usage ledger as command ``bench`` however it ends (warm-ups
    too: they used tokens and, on an API, money). ``BenchReport.recorded`` counts the rows written
    and ``BenchReport.warnings`` says why any could not be.
    """
    options.check()
    resolved = with_load_overrides(resolved, options.quantize, options.dtype, compile=options.compile)
    say = on_progress or (lambda _message: None)
    if open_provider is None:
        from llmctl.providers.registry import open_provider as registry_open

        open_provider = registry_open
    local = resolved.spec.local
    calls = CallMaker(settings or Settings(), record=record, ignore_budget=ignore_budget)

    say("Importing the backend")
    started = clock()
    provider = open_provider(resolved)
    if local:
        _ask(provider, "preload_libraries")
    import_s = clock() - started
    try:
        say(f"Loading {resolved.display_name}")
        if local:
            _ask(provider, "reset_peak_memory")
        started = clock()
        provider.prepare()
        load_s = clock() - started
        measurer = local_measurer if local else hosted_measurer
        measure = measurer(provider, options, clock, calls)
        warmups: list[RunMeasurement] = []
        runs: list[RunMeasurement] = []
        compiles = bool(getattr(provider, "compiles", False))
        for index in range(options.warmup):
            say(f"Warm-up {index + 1}/{options.warmup}" + (" (compiling: can take minutes)" if compiles else ""))
            warmups.append(measure())
        for index in range(options.runs):
            say(f"Run {index + 1}/{options.runs}")
            runs.append(measure())
        environment = _local_environment(provider) if local else Environment(device="remote API")
        peak_gpu = _ask(provider, "peak_accelerator_memory") if local else None
        compile_facts = _compile_facts(provider, in_warmup=options.warmup > 0) if compiles else None
    finally:
        provider.close()
        calls.close()
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
        recorded=calls.recorded,
        warnings=tuple(calls.warnings),
        prompt_varied=not local,
        compile=compile_facts,
    )


def _compile_facts(provider: Provider, *, in_warmup: bool) -> CompileFacts:
    seconds: float | None = getattr(provider, "compile_seconds", None)
    cache_dir = getattr(provider, "compile_cache_dir", lambda: None)()
    return CompileFacts(seconds=seconds, cache_dir=str(cache_dir), in_warmup=in_warmup)


def _local_environment(provider: Provider) -> Environment:
    facts: dict[str, str | int | None] = _ask(provider, "runtime_info") or {}
    dtype, quantization, threads = facts.get("dtype"), facts.get("quantization"), facts.get("threads")
    return Environment(
        device=str(facts.get("device") or "local"),
        dtype=None if dtype is None else str(dtype),
        quantization=None if quantization is None else str(quantization),
        torch_threads=threads if isinstance(threads, int) else None,
    )


def _ask(provider: Provider, capability: str) -> Any:
    """Call an optional no-argument capability of a local backend; None when it has not got it."""
    method = getattr(provider, capability, None)
    return None if method is None else method()
