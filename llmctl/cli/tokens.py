"""``llmctl tokens``: count a prompt's tokens before sending it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, ModelOpt, SystemOpt, app_state

if TYPE_CHECKING:
    from llmctl.services.token_counting import TokenCount

app = typer.Typer(help="Count tokens before a call.", no_args_is_help=True)


@app.command("count")
def count(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="The prompt. Piped stdin is appended after a blank line.")] = None,
    model: ModelOpt = None,
    system: SystemOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Count the tokens TEXT (and --system) take as input to MODEL, and what is left of its context window.

    The input is composed as `llmctl generate` composes it (argument, blank line, stdin)
    and counted with the model's chat formatting. Local models: exact, with the model's
    tokenizer and chat template. OpenAI models: exact, offline. Anthropic models: the
    API's count-tokens endpoint when an API key is configured, else an estimate.
    The source says which: exact, provider or estimate.
    """
    # Imported here: they pull in pydantic, which `llmctl --help` must not pay for.
    from llmctl.providers.registry import resolve
    from llmctl.services.generation import build_messages, compose_prompt, read_stdin
    from llmctl.services.token_counting import count_tokens

    settings = app_state(ctx).settings()
    piped = None if sys.stdin is None or sys.stdin.isatty() else read_stdin(sys.stdin.buffer)
    prompt = compose_prompt(text, piped)
    result = count_tokens(resolve(model, settings), build_messages(prompt, system))
    if as_json:
        output.print_json(
            {
                "model": result.model,
                "provider": result.provider,
                "tokens": result.tokens,
                "source": result.source.value,
                "method": result.method,
                "context_window": result.context_window,
                "remaining": result.remaining,
                "note": result.note,
            }
        )
        return
    _print(result)


def _print(result: TokenCount) -> None:
    from llmctl.domain import plural

    window, left = result.context_window, result.remaining
    output.facts(
        [
            ("tokens", result.tokens),
            ("source", result.source.value),
            ("model", f"{result.model} ({result.provider})"),
            ("counted with", result.method),
            ("context window", None if window is None else plural(window, "token")),
            ("left", None if window is None or left is None else f"{left:,} ({result.tokens / window:.1%} used)"),
        ]
    )
    if result.note:
        output.status(f"Estimated because {result.note}.")
    if window is None:
        output.status("Context window unknown: set context_window for the model in the config.")
    elif left is not None and left < 0:
        output.warning(f"The input is {plural(-left, 'token')} over {result.model}'s context window.")
