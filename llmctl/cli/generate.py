"""``llmctl generate``: one prompt in, one answer out."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmctl.cli import output
from llmctl.cli.options import (
    CompileOpt,
    IgnoreBudgetOpt,
    JsonOpt,
    MaxTokensOpt,
    ModelOpt,
    NoServerOpt,
    RenderOpt,
    SeedOpt,
    SystemOpt,
    TemperatureOpt,
    TopPOpt,
    app_state,
)
from llmctl.cli.render import first_code_block, max_tokens_notice, stream_markdown, write_raw_stream
from llmctl.domain import FinishReason, GenerationRequest, RunStatus, plural
from llmctl.errors import ExitStatus, LlmctlError, OutputError, UsageError

if TYPE_CHECKING:
    from llmctl.providers.base import Provider
    from llmctl.services.calls import Call
    from llmctl.services.generation import GenerationResult, GenerationRun
    from llmctl.services.structured import SchemaMismatch
    from llmctl.services.usage.accounting import Accounting


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
    resume_last: Annotated[
        bool, typer.Option("--continue", "-c", help="Continue the conversation used last (chat's or generate's).")
    ] = False,
    conversation_id: Annotated[
        str | None, typer.Option("--conversation", metavar="ID", help="Continue this saved conversation.")
    ] = None,
    no_save: Annotated[
        bool, typer.Option("--no-save", help="Keep this call out of the conversation store (-c cannot follow it).")
    ] = False,
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            metavar="SCHEMA",
            help="Answer in JSON valid for this JSON schema: a .json file, or inline "
            '(\'{"name": "str", "age": "int"}\').',
        ),
    ] = None,
    no_server: NoServerOpt = False,
    compile_: CompileOpt = False,
) -> None:
    """Generate a reply to PROMPT.

    Input: with a PROMPT argument and piped stdin, the model gets the argument,
    a blank line, then stdin (`cat notes.md | llmctl generate "summarize this"`);
    with only one of them, that one alone. Stdin must be UTF-8.

    Output: the answer streams to stdout, rendered as Markdown on a terminal and
    as raw text when piped (--markdown / --raw force either). Usage and errors go to stderr.
    Every call is recorded in the usage ledger (`llmctl usage`); a spent [budget]
    refuses the call unless --ignore-budget is given.
    Exit codes: 0 ok, 1 provider failure (or stdout full), 2 usage/config error or budget spent,
    130 interrupted by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (each still recorded).
    """
    # Imported here, not at the top: they pull in pydantic, which `llmctl --help` must not pay for.
    from llmctl.providers.registry import resolve
    from llmctl.services.attachments import images_of, read_attachment, with_attachments
    from llmctl.services.calls import Call
    from llmctl.services.chat.conversation import new_conversation_id
    from llmctl.services.generation import build_messages, compose_prompt, read_stdin, resolve_params
    from llmctl.services.running_server import open_model
    from llmctl.services.structured import load_schema

    if sys.stdout is None:  # started with stdout closed (`>&-`): make no call whose answer would be lost
        raise OutputError.closed()
    state = app_state(ctx)
    settings = state.settings()
    if resume_last and conversation_id:
        raise UsageError("Use either --continue or --conversation ID, not both.")
    if extract and (as_json or schema):
        raise UsageError("--extract goes with neither --json nor --schema.", hint="--json has the whole answer.")
    response_schema = load_schema(schema) if schema is not None else None
    display = Display(
        as_json=as_json, stream=not no_stream, markdown=markdown, extract=extract, hold=response_schema is not None
    )
    piped = None if sys.stdin is None or sys.stdin.isatty() else read_stdin(sys.stdin.buffer)
    attachments = [read_attachment(name) for name in files or []]
    has_prompt = bool((prompt or "").strip() or (piped or "").strip())
    text = with_attachments(compose_prompt(prompt, piped) if has_prompt or not attachments else "", attachments)
    params = resolve_params(settings.defaults, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    images = images_of(attachments)
    if resume_last or conversation_id:
        if response_schema is not None or images or compile_:
            raise UsageError("--schema, --compile and image files do not go with --continue/--conversation yet.")
        from llmctl.cli.follow_up import continue_conversation

        continue_conversation(
            settings,
            text=text,
            model=model,
            system=system,
            params=params,
            resume_last=resume_last,
            conversation_id=conversation_id,
            ignore_budget=ignore_budget,
            display=display,
            show_usage=show_usage,
        )
        return
    resolved = resolve(model, settings)
    if compile_:
        from llmctl.services.bench.run import with_load_overrides

        resolved = with_load_overrides(resolved, None, None, compile=True)
    # A compiled model lives in this process: the server's copy is not compiled.
    provider = open_model(resolved, settings, use_server=not no_server and not compile_)
    try:
        _warn_ignored_flags(provider, resolved.display_name, temperature=temperature, top_p=top_p, seed=seed)
        from llmctl.providers.base import accepts_images

        if images and not accepts_images(provider):
            raise UsageError(
                f"{resolved.display_name} does not take images (-f {images[0].name}).",
                hint="Send it to a hosted model that reads images (e.g. -m openai/gpt-4o), or describe it in words.",
            )
        *history, question = build_messages(text, system)
        messages = (*history, replace(question, images=images))
        request = GenerationRequest(messages, params, stream=not no_stream, response_schema=response_schema)
        one_shot_id = None if no_save else new_conversation_id()
        call = Call(
            provider,
            request,
            settings=settings,
            command="generate",
            ignore_budget=ignore_budget,
            prompt_text=text,
            conversation_id=one_shot_id,
            keep_text=not no_save,
        )
        for warning in call.warnings:
            output.warning(warning)
        if getattr(provider, "compiles", False):
            output.status(compile_notice(resolved.display_name, getattr(provider, "compile_cache_dir", lambda: None)()))
        failure: LlmctlError | None = None
        interrupt: KeyboardInterrupt | None = None
        broken_pipe = False
        try:
            with call:
                _show_or_fail(call, display)
        except KeyboardInterrupt as exc:
            interrupt = exc
        except BrokenPipeError:
            _silence_stdout()
            broken_pipe = True
        except LlmctlError as exc:
            failure = exc
    finally:
        provider.close()

    outcome = call.outcome
    result, accounting = outcome.result, outcome.accounting
    warnings = list(outcome.warnings)
    if one_shot_id is not None and result.reached_model:
        from llmctl.services.chat.session import save_one_shot
        from llmctl.services.chat.store import ConversationStore

        refused = save_one_shot(ConversationStore(), one_shot_id, resolved, system=system, user_text=text, call=outcome)
        warnings += [refused] if refused else []
    for warning in warnings:
        output.warning(warning)
    compile_seconds = getattr(provider, "compile_seconds", None)
    if compile_seconds:
        output.status(f"torch.compile took {compile_seconds:,.1f} s of this call.")
    if broken_pipe:
        raise typer.Exit(ExitStatus.OK)
    if isinstance(failure, OutputError):
        raise failure
    mismatch: SchemaMismatch | None = None
    try:
        if response_schema is not None and failure is None and interrupt is None:
            mismatch = _show_structured(result.completion.text, response_schema, as_json=as_json)
        if as_json:
            output.print_json({**result_json(result), "cost_usd": accounting.cost_usd})
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(ExitStatus.OK) from None
    except OSError:
        # The call is already recorded; the entry point says, in one line, why stdout failed.
        _silence_stdout()
        raise typer.Exit(ExitStatus.FAILURE) from None
    if show_usage:
        output.status(output.usage_line(result.completion.usage, cost=_cost_text(accounting)))
    if failure is not None:
        raise failure
    if mismatch is not None:
        raise mismatch
    if result.completion.finish_reason is FinishReason.LENGTH:
        output.status(max_tokens_notice(params.max_tokens))
    if interrupt is not None:
        from llmctl.services import interrupts

        output.status(interrupt_notice(call.run, resolved.display_name, interrupts.describe(interrupt)))
        raise typer.Exit(interrupts.exit_code(interrupt))


def compile_notice(model: str, cache_dir: object) -> str:
    return (
        f"Compiling {model} for faster decoding (static cache + torch.compile): a first call can take minutes "
        f"on a CPU; compiled kernels are cached in {cache_dir}."
    )


def _output_error(exc: OSError) -> OutputError:
    _silence_stdout()
    return OutputError(
        f"Cannot write the answer to standard output: {exc.strerror or exc}.",
        hint="Redirect it somewhere with room (> file); the call is recorded in the usage ledger.",
    )


def _show_structured(text: str, schema: Mapping[str, Any], *, as_json: bool) -> SchemaMismatch | None:
    """A schema's answer: printed once it validates; on stderr, with the mismatch to raise, when it does not."""
    from llmctl.services.structured import SchemaMismatch, check_answer

    try:
        check_answer(text, schema)
    except SchemaMismatch as exc:
        if not as_json:
            write_raw_stream(iter([text]), sys.stderr)
        return exc
    if not as_json:
        write_raw_stream(iter([text]))
    return None


def _show_or_fail(call: Call, display: Display) -> None:
    """Show the answer; standard output failing (not a closed pipe) is an error of its own."""
    try:
        _show(call.run, display)
    except BrokenPipeError:
        raise
    except OSError as exc:
        if call.run.status is not RunStatus.OK:
            raise  # the provider failed, not our output
        raise _output_error(exc) from exc


def _warn_ignored_flags(provider: Provider, model: str, **flags: float | int | None) -> None:
    """Say so when the user set a flag the provider's API does not take (Anthropic: temperature)."""
    from llmctl.providers.base import unsupported_params

    ignored = unsupported_params(provider)
    names = [f"--{name.replace('_', '-')}" for name, value in flags.items() if value is not None and name in ignored]
    if names:
        output.warning(f"{model} does not take {', '.join(names)}; ignored.")


def _cost_text(accounting: Accounting) -> str:
    from llmctl.services.usage.accounting import format_cost

    if accounting.cost is not None:
        return f"cost {format_cost(accounting.cost.usd)}"
    if accounting.price_hint:
        return f"cost unknown ({accounting.price_hint})"
    return "cost unknown (token counts unknown)"


@dataclass(frozen=True)
class Display:
    """How the answer is shown while it arrives."""

    as_json: bool = False
    stream: bool = True
    markdown: bool | None = None  # None: Markdown on a terminal, raw text when piped
    extract: bool = False  # only the first fenced code block
    hold: bool = False  # nothing until the answer is complete (--schema: shown once it validates)


def _show(run: GenerationRun, display: Display) -> None:
    # Closed however rendering ends: a write that fails (stdout full or closed) stops the
    # model's generation thread now, not at interpreter exit, where a daemon thread inside
    # torch aborts the process.
    with closing(run.deltas()) as pieces:
        render_answer(pieces, display)


def render_answer(pieces: Iterator[str], display: Display) -> None:
    """Show an answer as it arrives, as ``display`` says."""
    if display.as_json or display.hold:
        for _ in pieces:
            pass
        return
    if display.extract:
        answer = "".join(pieces)
        block = first_code_block(answer)
        if block is None:
            output.warning("The answer has no fenced code block; printing all of it.")
        write_raw_stream(iter([answer if block is None else block]))
        return
    pieces = pieces if display.stream else _all_at_once(pieces)
    if output.stdout_is_terminal() if display.markdown is None else display.markdown:
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


def interrupt_notice(run: GenerationRun, model: str, how: str = "Ctrl-C") -> str:
    """What the interrupt (``how``: Ctrl-C, SIGTERM, SIGHUP) stopped: the load, or the answer after N tokens."""
    if not run.prepared:
        return f"Cancelled by {how} while loading {model}; nothing was generated."
    completion = run.result().completion
    tokens = completion.usage.output_tokens
    if tokens is None:
        arrived = plural(len(completion.text), "character")
        return f"Interrupted by {how}; {arrived} arrived before it (token count unknown)."
    return f"Interrupted by {how} after {plural(tokens, 'token')}; the text above is all that arrived."


def _silence_stdout() -> None:
    output.silence_stdout()


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
