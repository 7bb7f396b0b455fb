"""``llmctl generate``: one prompt in, one answer out."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmctl.cli import output
from llmctl.cli.options import (
    IgnoreBudgetOpt,
    JsonOpt,
    MaxTokensOpt,
    ModelOpt,
    RenderOpt,
    SeedOpt,
    SystemOpt,
    TemperatureOpt,
    TopPOpt,
    app_state,
)
from llmctl.cli.render import first_code_block, max_tokens_notice, stream_markdown, write_raw_stream
from llmctl.domain import FinishReason, GenerationRequest, plural
from llmctl.errors import LlmctlError, UsageError

if TYPE_CHECKING:
    from llmctl.services.accounting import Accounting
    from llmctl.services.generation import GenerationResult, GenerationRun

EXIT_INTERRUPTED = 130


def generate(
    ctx: typer.Context,
    prompt: Annotated[
        str | None, typer.Argument(help="The prompt. Piped stdin is appended after a blank line.")
    ] = None,
    model: ModelOpt = None,
    system: SystemOpt = None,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    seed: SeedOpt = None,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Ask for the whole answer in one response, and print it then.")
    ] = False,
    show_usage: Annotated[bool, typer.Option("--usage", "-u", help="Print token usage to stderr.")] = False,
    as_json: JsonOpt = False,
    ignore_budget: IgnoreBudgetOpt = False,
    markdown: RenderOpt = None,
    files: Annotated[
        list[str] | None,
        typer.Option("--file", "-f", metavar="FILE", help="Send a text file with the prompt (repeatable)."),
    ] = None,
    extract: Annotated[
        bool, typer.Option("--extract", "-x", help="Print only the first fenced code block of the answer.")
    ] = False,
) -> None:
    """Generate a reply to PROMPT.

    Input: with a PROMPT argument and piped stdin, the model gets the argument,
    a blank line, then stdin (`cat notes.md | llmctl generate "summarize this"`);
    with only one of them, that one alone. Stdin must be UTF-8.

    Output: the answer streams to stdout, rendered as Markdown on a terminal and
    as raw text when piped (--markdown / --raw force either). Usage and errors go to stderr.
    Every call is recorded in the usage ledger (`llmctl usage`); a spent [budget]
    refuses the call unless --ignore-budget is given.
    Exit codes: 0 ok, 1 provider failure, 2 usage/config error or budget spent, 130 interrupted.
    """
    # Imported here, not at the top: they pull in pydantic, which `llmctl --help` must not pay for.
    from llmctl.providers.registry import open_provider, resolve
    from llmctl.services.accounting import record_call
    from llmctl.services.attachments import read_attachment, with_attachments
    from llmctl.services.budget import check_budget
    from llmctl.services.generation import (
        GenerationRun,
        build_messages,
        compose_prompt,
        read_stdin,
        resolve_params,
    )

    state = app_state(ctx)
    settings = state.settings()
    if extract and as_json:
        raise UsageError("Use either --extract or --json, not both.", hint="--json has the whole answer in text.")
    piped = None if sys.stdin is None or sys.stdin.isatty() else read_stdin(sys.stdin.buffer)
    attachments = [read_attachment(name) for name in files or []]
    has_prompt = bool((prompt or "").strip() or (piped or "").strip())
    text = with_attachments(compose_prompt(prompt, piped) if has_prompt or not attachments else "", attachments)
    params = resolve_params(settings.defaults, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    resolved = resolve(model, settings)
    for warning in check_budget(settings, resolved, ignore=ignore_budget):
        output.warning(warning)
    provider = open_provider(resolved)
    _warn_ignored_flags(provider, resolved.display_name, temperature=temperature, top_p=top_p, seed=seed)
    request = GenerationRequest(build_messages(text, system), params, stream=not no_stream)

    run = GenerationRun(provider, request)
    failure: LlmctlError | None = None
    interrupted = broken_pipe = False
    try:
        _show(run, as_json=as_json, stream=not no_stream, markdown=markdown, extract=extract)
    except KeyboardInterrupt:
        interrupted = True
        run.interrupted()
    except BrokenPipeError:
        run.interrupted()
        _silence_stdout()
        broken_pipe = True
    except LlmctlError as exc:
        failure = exc
    finally:
        provider.close()

    result = run.result()
    accounting = record_call(result, resolved, settings=settings, command="generate", prompt_text=text)
    if accounting.warning:
        output.warning(accounting.warning)
    if broken_pipe:
        raise typer.Exit(0)
    if as_json:
        output.print_json({**result_json(result), "cost_usd": accounting.cost_usd})
    if show_usage:
        output.status(output.usage_line(result.completion.usage, cost=_cost_text(accounting)))
    if failure is not None:
        raise failure
    if result.completion.finish_reason is FinishReason.LENGTH:
        output.status(max_tokens_notice(params.max_tokens))
    if interrupted:
        output.status(interrupt_notice(run, resolved.display_name))
        raise typer.Exit(EXIT_INTERRUPTED)


def _warn_ignored_flags(provider: object, model: str, **flags: float | int | None) -> None:
    """Say so when the user set a flag the provider's API does not take (Anthropic: temperature)."""
    ignored: frozenset[str] = getattr(provider, "ignored_params", frozenset())
    names = [f"--{name.replace('_', '-')}" for name, value in flags.items() if value is not None and name in ignored]
    if names:
        output.warning(f"{model} does not take {', '.join(names)}; ignored.")


def _cost_text(accounting: Accounting) -> str:
    from llmctl.services.accounting import format_cost

    if accounting.cost is not None:
        return f"cost {format_cost(accounting.cost.usd)}"
    if accounting.price_hint:
        return f"cost unknown ({accounting.price_hint})"
    return "cost unknown (token counts unknown)"


def _show(run: GenerationRun, *, as_json: bool, stream: bool, markdown: bool | None, extract: bool = False) -> None:
    # Closed however rendering ends: a write that fails (stdout full or closed) stops the
    # model's generation thread now, not at interpreter exit, where a daemon thread inside
    # torch aborts the process.
    with closing(run.deltas()) as pieces:
        _render(pieces, as_json=as_json, stream=stream, markdown=markdown, extract=extract)


def _render(pieces: Iterator[str], *, as_json: bool, stream: bool, markdown: bool | None, extract: bool) -> None:
    if as_json:
        for _ in pieces:
            pass
        return
    if extract:
        answer = "".join(pieces)
        block = first_code_block(answer)
        if block is None:
            output.warning("The answer has no fenced code block; printing all of it.")
        write_raw_stream(iter([answer if block is None else block]))
        return
    pieces = pieces if stream else _all_at_once(pieces)
    if output.stdout_is_terminal() if markdown is None else markdown:
        stream_markdown(pieces, output.out(), live=output.stdout_is_terminal())
    else:
        write_raw_stream(pieces)


def _all_at_once(pieces: Iterator[str]) -> Iterator[str]:
    """--no-stream: the answer in one piece; what arrived is still shown when the call ends early."""
    received: list[str] = []
    try:
        received.extend(pieces)
    finally:
        text = "".join(received)
        if text:
            yield text


def interrupt_notice(run: GenerationRun, model: str) -> str:
    """What Ctrl-C stopped: the load, or the answer after N tokens."""
    if not run.prepared:
        return f"Cancelled while loading {model}; nothing was generated."
    completion = run.result().completion
    tokens = completion.usage.output_tokens
    if tokens is None:
        return f"Interrupted; {plural(len(completion.text), 'character')} arrived before Ctrl-C (token count unknown)."
    return f"Interrupted after {plural(tokens, 'token')}; the text above is all that arrived."


def _silence_stdout() -> None:
    """After the reader of our pipe went away, drop further writes instead of raising."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def result_json(result: GenerationResult) -> dict[str, Any]:
    usage = result.completion.usage
    return {
        "text": result.completion.text,
        "model": result.model,
        "provider": result.provider,
        "finish_reason": result.completion.finish_reason.value,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "source": usage.source.value,
            "cached_input_tokens": usage.cached_input_tokens,
        },
        "timing": {
            "first_token_s": None if result.timing.first_token_s is None else round(result.timing.first_token_s, 4),
            "total_s": round(result.timing.total_s, 4),
        },
        "status": result.status.value,
        "error": None if result.error is None else result.error.message,
    }
