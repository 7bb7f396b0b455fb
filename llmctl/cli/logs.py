"""``llmctl logs``: past calls with their prompts and answers; ``logs on`` / ``logs off`` to keep text or not."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, app_state

if TYPE_CHECKING:
    from llmctl.services.usage.ledger import LedgerRecord

app = typer.Typer(
    help="Past calls with their prompts and answers, newest first.",
    invoke_without_command=True,
    no_args_is_help=False,
)

NOT_STORED = "(text not stored: [usage] store_text was off for this call; `llmctl logs on` keeps it from now on)"


@app.callback()
def logs(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", "-n", min=0, help="How many calls to show; 0 for all.")] = 3,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only calls to this model (repeatable).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only calls since: 24h, 7d, 2025-01-31.")] = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", "--cid", metavar="ID", help="Only calls of this conversation.")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--query", "-q", metavar="TEXT", help="Only calls whose prompt or answer has TEXT.")
    ] = None,
    response: Annotated[
        bool, typer.Option("--response", "-r", help="Print the newest matching answer alone (to pipe it on).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show past calls: when, which model, tokens and cost, the prompt and the answer.

    Text is kept while `[usage] store_text` is on (the default; `llmctl logs off` stops it,
    `llmctl logs on` starts it again). Examples: `llmctl logs -n 10`, `llmctl logs -q paris`,
    `llmctl logs -r | pbcopy`, `llmctl logs --conversation 2025 --json`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from llmctl.services.usage.call_log import LogQuery, recent_calls
    from llmctl.services.usage.report import parse_when

    settings = app_state(ctx).settings()
    models = tuple(_model_names(settings, name) for name in model or [])
    query = LogQuery(
        count=1 if response else (count or None),
        models=tuple(name for names in models for name in names),
        since=parse_when(since) if since else None,
        conversation=conversation,
        search=search,
    )
    calls = recent_calls(query)
    if response:
        _print_response(calls)
    elif as_json:
        output.print_json([_as_json(call) for call in calls])
    elif not calls:
        output.status("No calls match." if any((model, since, conversation, search)) else "No calls recorded yet.")
    else:
        for index, call in enumerate(reversed(calls)):  # oldest of the newest first: reads like a transcript
            if index:
                sys.stdout.write("\n")
            sys.stdout.write(_as_text(call))
        sys.stdout.flush()


def _model_names(settings: Any, name: str) -> tuple[str, ...]:
    """What the ledger may call ``name``: itself, and for an alias (or demo) its target as PROVIDER/MODEL-ID."""
    from llmctl.services.usage.report import as_recorded

    return tuple(dict.fromkeys((name, as_recorded(settings, name))))


def _print_response(calls: list[LedgerRecord]) -> None:
    from llmctl.errors import LlmctlError

    if not calls:
        raise LlmctlError("No call matches, so there is no answer to print.")
    text = calls[0].response_text
    if text is None:
        raise LlmctlError("The newest call's answer was not stored.", hint="`llmctl logs on` keeps answers.")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _model(call: LedgerRecord) -> str:
    """PROVIDER/MODEL-ID, or a local model's folder alone."""
    return call.model if call.model.startswith(("/", "~")) else f"{call.provider}/{call.model}"


def _as_text(call: LedgerRecord) -> str:
    def count(value: int | None) -> str:
        return "unknown" if value is None else f"{value:,}"

    cost = "cost unknown" if call.cost_usd is None else f"${call.cost_usd:.6f}".rstrip("0").rstrip(".")
    lines = [
        f"## {_when(call.ts)} · {_model(call)} · {call.command} · call {call.id}",
        f"{count(call.input_tokens)} input, {count(call.output_tokens)} output tokens ({call.token_source}) · {cost}"
        f" · {call.status}" + (f" · conversation {call.conversation_id}" if call.conversation_id else ""),
    ]
    if call.error:
        lines.append(f"error: {call.error}")
    lines += ["", "### Prompt", "", call.prompt_text if call.prompt_text is not None else NOT_STORED]
    lines += ["", "### Answer", "", call.response_text if call.response_text is not None else NOT_STORED]
    return "\n".join(lines).rstrip("\n") + "\n"


def _as_json(call: LedgerRecord) -> dict[str, Any]:
    data = dict(call.__dict__)
    data["time"] = datetime.fromtimestamp(call.ts).astimezone().isoformat(timespec="seconds")
    data["text_stored"] = call.prompt_text is not None or call.response_text is not None
    return data


def _store_text(ctx: typer.Context, value: bool) -> None:
    from llmctl.services import config_service

    state = app_state(ctx)
    config_service.set_values(state.config_path, [("usage.store_text", "true" if value else "false")])
    if value:
        output.status(f"Prompts and answers are kept in the usage ledger from now on ({state.config_path}).")
    else:
        output.status(
            "Prompts and answers are no longer kept (token counts and costs still are). "
            "Text already stored stays; `llmctl logs` shows it."
        )


@app.command("on")
def logs_on(ctx: typer.Context) -> None:
    """Keep prompts and answers in the usage ledger (the default)."""
    _store_text(ctx, True)


@app.command("off")
def logs_off(ctx: typer.Context) -> None:
    """Stop keeping prompts and answers (calls are still counted and priced)."""
    _store_text(ctx, False)


@app.command("status")
def logs_status(ctx: typer.Context) -> None:
    """Say whether prompts and answers are being kept."""
    on = app_state(ctx).settings().usage.store_text
    typer.echo("on: prompts and answers are kept" if on else "off: only token counts and costs are kept")
