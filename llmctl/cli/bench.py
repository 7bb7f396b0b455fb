"""``llmctl bench MODEL``: load time, first-token latency, prefill and decode speed, memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import (
    CompileOpt,
    DTypeOpt,
    IgnoreBudgetOpt,
    JsonOpt,
    QuantizeOpt,
    app_state,
    complete_model_name,
)
from llmctl.domain import TOKENS_MAX, human_bytes

if TYPE_CHECKING:
    from llmctl.services.bench.run import BenchReport, Stat


_LABELS = {
    "ttft_s": ("Time to first token", "ms"),
    "prefill_tokens_per_s": ("Prefill", "tokens/s"),
    "decode_tokens_per_s": ("Decode", "tokens/s"),
    "total_s": ("Whole call", "s"),
}


def bench(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="Alias, PROVIDER/MODEL-ID, or a local model folder.",
            autocompletion=complete_model_name,
        ),
    ],
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, help="Timed runs.")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed runs first.")] = 1,
    prompt_tokens: Annotated[
        int, typer.Option("--prompt-tokens", min=1, max=TOKENS_MAX, help="Prompt length in tokens.")
    ] = 128,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, max=TOKENS_MAX, help="Tokens to generate per run.")
    ] = 64,
    quantize: QuantizeOpt = None,
    dtype: DTypeOpt = None,
    compile_: CompileOpt = False,
    record: Annotated[
        bool, typer.Option("--record", help="Record every call (warm-ups too) in the usage ledger.")
    ] = False,
    as_json: JsonOpt = False,
    ignore_budget: IgnoreBudgetOpt = False,
) -> None:
    """Benchmark MODEL: load time, first token, prefill and decode speed, memory.

    Local models get a prompt of exactly --prompt-tokens tokens and generate
    exactly --max-tokens tokens (greedy, end-of-sequence suppressed), so runs
    compare. Hosted models are timed over the network; their token counts are
    what the API reports. Prints the median, min and max over --runs runs
    after --warmup untimed runs. Records nothing in the usage ledger unless
    --record. Example: llmctl bench demo --runs 10 --json
    """
    from llmctl.providers.registry import resolve
    from llmctl.services.bench.run import BenchOptions, run_bench

    options = BenchOptions(
        runs=runs,
        warmup=warmup,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        quantize=None if quantize is None else quantize.value,
        dtype=None if dtype is None else dtype.value,
        compile=compile_,
    )
    settings = app_state(ctx).settings()
    resolved = resolve(model, settings)
    with output.err().status("Starting…") as progress:
        report = run_bench(
            resolved,
            options,
            on_progress=lambda message: progress.update(f"{message}…"),
            settings=settings,
            record=record,
            ignore_budget=ignore_budget,
        )
    for warning in report.warnings:
        output.warning(warning)
    if as_json:
        output.print_json(report.to_json())
        return
    _print_report(report)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def _cell(metric: str, value: float | None) -> str | None:
    if value is None:
        return None
    if metric == "ttft_s":
        return _ms(value)
    if metric == "total_s":
        return f"{value:,.3f}"
    return f"{value:,.1f}"


def _bytes(value: int | None) -> str | None:
    return None if value is None else human_bytes(value, binary=True)


_STAT_COLUMNS = (
    output.Column("metric"),
    output.Column("median", justify="right", no_wrap=True),
    output.Column("min", justify="right", no_wrap=True),
    output.Column("max", justify="right", no_wrap=True),
    output.Column("unit", no_wrap=True),
)


def _print_report(report: BenchReport) -> None:
    from llmctl.domain import plural

    opts = report.options
    rows: list[tuple[output.Cell, ...]] = []
    for metric, (label, unit) in _LABELS.items():
        stat: Stat | None = report.stat(metric)
        if stat is None:
            rows.append((label, None, None, None, unit))
        else:
            rows.append((label, _cell(metric, stat.median), _cell(metric, stat.min), _cell(metric, stat.max), unit))
    output.table(_STAT_COLUMNS, rows, title=f"Benchmark of {report.model}")

    env = report.environment
    device = env.device
    if env.dtype:
        device += f", {env.dtype}"
    if env.quantization:
        device += f", {env.quantization}"
    if env.torch_threads:
        device += f", {plural(env.torch_threads, 'thread')}"
    details: list[tuple[str, output.Cell]] = [
        ("Model", f"{report.model} ({report.provider})"),
        ("Runs", f"{plural(opts.runs, 'run')} after {plural(opts.warmup, 'warm-up')}"),
        ("Tokens per run", _counts(report)),
        ("Import backend", f"{report.import_s:,.2f} s"),
        ("Load", f"{report.load_s:,.2f} s"),
        ("Peak memory (RSS)", _bytes(report.peak_rss_bytes)),
    ]
    if report.peak_gpu_bytes is not None:
        details.append(("Peak GPU memory", _bytes(report.peak_gpu_bytes)))
    details.append(("Device", device))
    if report.compile is not None:
        details.append(("Compile", _compile_cell(report)))
    if report.prompt_cache_note():
        details.append(("Prompt cache", str(report.prompt_cache_note())))
    if report.recorded:
        details.append(("Ledger", f"{plural(report.recorded, 'call')} recorded as command 'bench' (warm-ups included)"))
    output.section_break()
    output.facts(details)
    short = [run for run in report.runs if run.output_tokens is not None and run.output_tokens < opts.max_tokens]
    if short:
        output.warning(
            f"{plural(len(short), 'run')} ended before {plural(opts.max_tokens, 'token')}; "
            "their decode rate covers fewer tokens."
        )


def _compile_cell(report: BenchReport) -> str:
    """How long torch.compile took, and which runs' figures carry it."""
    facts = report.compile
    assert facts is not None
    took = "time unknown" if facts.seconds is None else f"{facts.seconds:,.1f} s compiling"
    where = "in the warm-up runs" if facts.in_warmup else "inside the first timed run (--warmup 0)"
    return f"torch.compile + static cache: {took}, {where}; kernels cached in {facts.cache_dir}"


def _counts(report: BenchReport) -> str:
    """``128 → 64 tokens``, from what the runs really had (unknown counts say so)."""
    prompts = {run.prompt_tokens for run in report.runs}
    outputs = {run.output_tokens for run in report.runs}

    def show(values: set[int | None], requested: int) -> str:
        if values == {requested}:
            return f"{requested}"
        if None in values:
            return f"~{requested} (count unknown)" if values == {None} else f"~{requested}"
        low, high = min(v for v in values if v is not None), max(v for v in values if v is not None)
        return f"{low}" if low == high else f"{low}-{high}"

    opts = report.options
    new = show(outputs, opts.max_tokens)
    return f"{show(prompts, opts.prompt_tokens)} prompt → {new} new token{'' if new == '1' else 's'}"
