"""``llmctl chat``: a conversation in the terminal, or one message per line from a pipe."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import (
    MaxTokensOpt,
    ModelOpt,
    RenderOpt,
    SeedOpt,
    SystemOpt,
    TemperatureOpt,
    TopPOpt,
    app_state,
)
from llmctl.errors import ExitStatus, OutputError, UsageError

if TYPE_CHECKING:  # imported in chat(): `llmctl --help` should not pay for them
    from llmctl.services.chat.conversation import Conversation
    from llmctl.services.chat.store import ConversationStore


def chat(
    ctx: typer.Context,
    model: ModelOpt = None,
    system: SystemOpt = None,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    seed: SeedOpt = None,
    resume_last: Annotated[bool, typer.Option("--continue", "-c", help="Resume the conversation used last.")] = False,
    conversation_id: Annotated[
        str | None,
        typer.Option("--conversation", metavar="ID", help="Resume a saved conversation (id or a unique start of it)."),
    ] = None,
    list_conversations: Annotated[
        bool, typer.Option("--list", help="List saved conversations (id, model, turns, first line, date) and exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --list: print the list as JSON.")] = False,
    no_save: Annotated[
        bool, typer.Option("--no-save", help="Leave nothing on disk: no conversation file, no input history.")
    ] = False,
    no_kv_cache: Annotated[
        bool, typer.Option("--no-kv-cache", help="Local models: process the whole history every turn.")
    ] = False,
    ignore_budget: Annotated[
        bool, typer.Option("--ignore-budget", help="Chat even when a configured budget is spent.")
    ] = False,
    markdown: RenderOpt = None,
) -> None:
    """Chat with a model, in the terminal or through a pipe.

    In a terminal: Enter sends, Esc+Enter (or Alt+Enter) starts a new line, and a
    message that starts with \"\"\" goes on until the closing \"\"\". Ctrl-C stops a reply
    (it is kept, marked interrupted), Ctrl-D quits. /help lists the commands: /exit,
    /reset, /system TEXT, /model MODEL, /usage, /retry, /save [FILE].

    Conversations are saved as they go; resume the last one with --continue, or any
    with --conversation ID (--list shows them).

    Piped (`printf 'hi\\nwhat did I say?\\n' | llmctl chat`), each input line is one
    message and each reply is written to stdout as raw text. In a terminal replies are
    rendered as Markdown; --raw writes them as raw text.
    """
    from llmctl.services.chat.store import ConversationStore

    store = ConversationStore()
    if list_conversations:
        _list(store, as_json=as_json)
        return
    if as_json:
        raise UsageError("--json goes with --list.", hint="llmctl chat --list --json")
    if resume_last and conversation_id:
        raise UsageError("Use either --continue or --conversation ID, not both.")
    conversation = conversation_to_resume(store, resume_last=resume_last, conversation_id=conversation_id)

    from llmctl.cli.chat.repl import run_interactive, run_piped
    from llmctl.services.chat.session import ChatSession, open_chat_provider
    from llmctl.services.generation import resolve_params

    settings = app_state(ctx).settings()
    params = resolve_params(settings.defaults, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    session = ChatSession(
        settings,
        model,
        params=params,
        system=system,
        conversation=conversation,
        store=None if no_save else store,
        opener=lambda resolved: open_chat_provider(resolved, kv_reuse=not no_kv_cache),
        ignore_budget=ignore_budget,
    )
    if sys.stdout is None:  # started with stdout closed (`>&-`): replies would be lost
        session.close()
        raise OutputError.closed()
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        if interactive:
            try:
                with output.err().status(f"Loading {session.model_name}…"):
                    session.prepare()
            except KeyboardInterrupt:
                output.status(f"Cancelled while loading {session.model_name}.")
                raise typer.Exit(ExitStatus.INTERRUPTED) from None
            run_interactive(session, resumed=conversation is not None, markdown=markdown is not False)
        else:
            session.prepare()
            run_piped(session, sys.stdin.buffer, sys.stdout)
    except BrokenPipeError:
        # `llmctl chat ... | head -c 5`: the turn in flight is already recorded and saved; end quietly.
        output.silence_stdout()
        raise typer.Exit(ExitStatus.OK) from None
    finally:
        session.close()


def conversation_to_resume(
    store: ConversationStore, *, resume_last: bool, conversation_id: str | None
) -> Conversation | None:
    """The conversation --continue (the newest readable) or --conversation ID names; None for neither."""
    if conversation_id:
        return store.load(conversation_id)
    if not resume_last:
        return None
    latest = store.latest_readable()
    if latest.skipped:
        names = ", ".join(path.name for path in latest.skipped[:3]) + (" …" if len(latest.skipped) > 3 else "")
        resumed = f"continuing {latest.conversation.id}" if latest.conversation else "none left to continue"
        output.warning(
            f"Skipped {len(latest.skipped)} newer saved conversation(s) that cannot be read ({names}); {resumed}."
        )
    if latest.conversation is None:
        raise UsageError("There is no saved conversation to continue.", hint="Start one with: llmctl chat")
    return latest.conversation


def _list(store: ConversationStore, *, as_json: bool) -> None:
    summaries = store.list()
    if as_json:
        output.print_json(
            [
                {
                    "id": s.id,
                    "model": s.model,
                    "turns": s.turns,
                    "title": s.title,
                    "created_at": s.created_at.isoformat(),
                    "updated_at": s.updated_at.isoformat(),
                }
                for s in summaries
            ]
        )
        return
    if not summaries:
        output.status("No saved conversations yet. Start one with: llmctl chat")
        return
    output.table(
        (
            output.Column("ID", no_wrap=True),
            output.Column("MODEL"),
            output.Column("TURNS", justify="right", no_wrap=True),
            output.Column("FIRST LINE", clip=True),
            output.Column("UPDATED", no_wrap=True),
        ),
        ((s.id, s.model, s.turns, s.title, f"{s.updated_at.astimezone():%Y-%m-%d %H:%M}") for s in summaries),
    )
