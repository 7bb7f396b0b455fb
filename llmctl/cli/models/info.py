"""``llmctl models info`` and ``llmctl models load``: what a model needs, and what it takes for real."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import DTypeOpt, JsonOpt, QuantizeOpt, app_state, complete_model_name

if TYPE_CHECKING:
    from llmctl.services.models.info import ModelDetails
    from llmctl.services.models.load_check import LoadReport

ModelArg = Annotated[
    str,
    typer.Argument(
        help="Alias, demo, hf/ORG/NAME (downloaded), a local model folder, or PROVIDER/MODEL.",
        autocompletion=complete_model_name,
    ),
]


def info(ctx: typer.Context, model: ModelArg, as_json: JsonOpt = False) -> None:
    """Show what a model is and the memory it needs.

    Architecture, parameter count, context length, chat template, files and size. Parameters are
    counted from the safetensors headers (no weights are loaded). Memory is estimated for fp32,
    fp16/bf16, 8-bit and 4-bit and checked against this machine's RAM and GPUs.
    """
    from llmctl.services.models.info import describe

    details = describe(model, app_state(ctx).settings())
    if as_json:
        output.print_json(details.to_json())
        return
    _print_details(details)


def _print_details(d: ModelDetails) -> None:
    from llmctl.cli.models.download import print_machine, print_memory_table
    from llmctl.domain import human_bytes, human_count, plural

    facts: list[tuple[str, output.Cell]] = [
        ("name", d.name),
        ("provider", f"{d.provider} ({d.kind})"),
        ("model", d.model_id + (f" @ {d.revision[:12]}" if d.revision else "")),
        ("source", d.source),
    ]
    if d.location:
        facts.append(("location", d.location))
    context = None if d.context_window is None else plural(d.context_window, "token")
    if d.source == "hosted":
        price = (
            None
            if d.input_price_per_mtok is None
            else f"${d.input_price_per_mtok:g} input / ${d.output_price_per_mtok:g} output per million tokens"
        )
        output.facts([*facts, ("context", context), ("price", price)])
        _print_notes(d.notes)
        return
    facts.append(("architecture", d.architecture))
    if d.parameters is not None:
        dtypes = ", ".join(f"{k} {human_count(v)}" for k, v in sorted(d.parameters_by_dtype.items()))
        facts.append(("parameters", f"{human_count(d.parameters)} ({d.parameters:,}; {dtypes})"))
    else:
        facts.append(("parameters", None))
    facts.append(("stored as", d.checkpoint_dtype))
    facts.append(("fastest precision", d.precision_here))
    if d.checkpoint_quantization:
        facts.append(("checkpoint", f"pre-quantized: {d.checkpoint_quantization}"))
    if d.configured_quantization:
        facts.append(("quantization", f"{d.configured_quantization} (from the config)"))
    facts.append(("context", context))
    template = (
        f"yes ({d.chat_template_source})" if d.has_chat_template else "no (llmctl uses a plain-text fallback prompt)"
    )
    facts.append(("chat template", template))
    facts.append(("files", f"{plural(len(d.files), 'file')}, {human_bytes(d.size_bytes)}"))
    output.facts(facts)

    output.section_break()
    output.table(
        (output.Column("file"), output.Column("size", justify="right", no_wrap=True)),
        ((path, human_bytes(size)) for path, size in d.files),
        title="Files",
    )
    if d.estimates:
        print_memory_table(d.estimates, d.hardware)
    elif d.hardware is not None:
        print_machine(d.hardware)
    _print_notes(d.notes)


def _print_notes(notes: list[str]) -> None:
    """Notes are about the figures, not figures: stderr, so piped tables stay tables."""
    for note in notes:
        output.status(note)


def load(
    ctx: typer.Context,
    model: ModelArg,
    quantize: QuantizeOpt = None,
    dtype: DTypeOpt = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="auto (accelerate spreads over GPUs, then CPU), cpu, cuda, cuda:N."),
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Prompt of the test generation.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Tokens of the test generation.")] = 32,
    force: Annotated[bool, typer.Option("--force", help="Load even when the estimate says it will not fit.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Load a local model and report time, memory and speed.

    Reports load time, dtype, device placement and the measured memory footprint. Loads through
    the same path as `generate` (config options, then these flags), then generates a few tokens
    greedily to measure tokens per second. Refuses before loading when the weights clearly do
    not fit the device's free memory, naming a quantization that would.
    """
    from llmctl.services.models.load_check import DEFAULT_TEST_PROMPT, load_and_test

    report = load_and_test(
        model,
        app_state(ctx).settings(),
        quantize=None if quantize is None else quantize.value,
        dtype=None if dtype is None else dtype.value,
        device=device,
        prompt=prompt or DEFAULT_TEST_PROMPT,
        max_new_tokens=max_tokens,
        force=force,
    )
    if as_json:
        output.print_json(report.to_json())
        return
    _print_report(report)


def _print_report(r: LoadReport) -> None:
    from llmctl.domain import human_bytes, plural

    total = sum(r.devices.values()) or 1
    if len(r.devices) == 1:
        placement = f"whole model on {next(iter(r.devices))}"
    else:
        placement = ", ".join(f"{device} {n / total:.0%}" for device, n in r.devices.items()) + " of the parameters"
    if r.device_map is not None:
        placement += f" (accelerate device map: {plural(len(r.device_map), 'entry', 'entries')}; --json shows it)"
    footprint = human_bytes(r.footprint_bytes)
    if r.estimate is not None:
        footprint += f" (estimated {human_bytes(r.estimate.weights_bytes)} for {r.estimate.precision})"
    speed = "unknown speed" if r.tokens_per_second is None else f"{r.tokens_per_second:.1f} tokens/s"
    generated = "unknown tokens" if r.generated_tokens is None else plural(r.generated_tokens, "token")
    output.facts(
        [
            ("loaded", r.name),
            ("from", r.location),
            ("load time", f"{r.load_seconds:.2f} s (+ {r.import_seconds:.2f} s importing the libraries)"),
            ("dtype", r.dtype + (f", {r.quantization} (bitsandbytes)" if r.quantization else "")),
            ("device map", placement),
            ("memory", footprint),
            ("generation", f"{generated} in {r.generation_seconds:.2f} s: {speed} (greedy)"),
            ("prompt", r.prompt),
            ("answer", r.sample_text.strip() or "(no text)"),
        ]
    )
