"""``generate -c`` / ``generate --conversation ID``: a one-shot message that continues a saved conversation.

The conversation store is the one ``chat`` uses: the message goes to the model with the
conversation's history (fitted to the context window as in chat), the reply is shown as
``generate`` shows any answer, and the turn is added to the conversation and saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from llmctl.cli import output
from llmctl.cli.render import max_tokens_notice
from llmctl.domain import FinishReason, GenerationParams
from llmctl.errors import ExitStatus, LlmctlError

if TYPE_CHECKING:
    from llmctl.cli.generate import Display
    from llmctl.config import Settings


def continue_conversation(
    settings: Settings,
    *,
    text: str,
    model: str | None,
    system: str | None,
    params: GenerationParams,
    resume_last: bool,
    conversation_id: str | None,
    ignore_budget: bool,
    display: Display,
    show_usage: bool,
) -> None:
    from llmctl.cli.chat import conversation_to_resume
    from llmctl.cli.generate import render_answer, result_json
    from llmctl.services import interrupts
    from llmctl.services.chat.session import ChatSession, open_chat_provider
    from llmctl.services.chat.store import ConversationStore

    store = ConversationStore()
    conversation = conversation_to_resume(store, resume_last=resume_last, conversation_id=conversation_id)
    session = ChatSession(
        settings,
        model,
        params=params,
        system=system,
        conversation=conversation,
        store=store,
        opener=open_chat_provider,
        ignore_budget=ignore_budget,
        command="generate",
    )
    try:
        turn = session.start_turn(text)
        for warning in turn.warnings:
            output.warning(warning)
        stopped: BaseException | None = None
        try:
            render_answer(turn.deltas(), display)
        except BaseException as exc:  # recorded and saved below, whatever it was
            stopped = exc
        outcome = turn.finish(stopped)
    finally:
        session.close()
    for warning in outcome.warnings:
        output.warning(warning)
    notice = session.take_drop_notice()
    if notice:
        output.warning(f"{notice} oldest turn(s) no longer fit in {session.model_name}'s context window; not sent.")
    if isinstance(stopped, BrokenPipeError):
        output.silence_stdout()
        raise typer.Exit(ExitStatus.OK)
    if stopped is not None and not isinstance(stopped, (KeyboardInterrupt, LlmctlError)):
        raise stopped
    result = outcome.result
    if display.as_json:
        data: dict[str, Any] = {**result_json(result), "cost_usd": outcome.turn.cost_usd}
        output.print_json({**data, "conversation_id": session.conversation.id})
    if show_usage:
        output.status(output.usage_line(result.completion.usage))
    if isinstance(stopped, LlmctlError):
        raise stopped
    if result.completion.finish_reason is FinishReason.LENGTH:
        output.status(max_tokens_notice(params.max_tokens))
    if isinstance(stopped, KeyboardInterrupt):
        output.status(f"Interrupted by {interrupts.describe(stopped)}; the turn is saved as interrupted.")
        raise typer.Exit(interrupts.exit_code(stopped))
    if show_usage and outcome.saved:
        output.status(f"Saved in conversation {session.conversation.id}.")
