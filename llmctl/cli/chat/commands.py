"""What ``llmctl chat`` shows besides replies: slash commands, the status line, /usage, /help.

Shared by the terminal REPL and the line-by-line (piped) mode; only where the
text goes differs (``Console``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from llmctl.cli.output import format_count
from llmctl.domain import RunStatus, Usage, plural
from llmctl.errors import UsageError
from llmctl.services.chat.conversation import Conversation, UsageTotals
from llmctl.services.chat.export import export
from llmctl.services.chat.session import ChatSession, ChatTurn, TurnOutcome
from llmctl.services.usage.accounting import format_cost

BLOCK_QUOTES = '"""'

COMMANDS: dict[str, str] = {
    "/help": "show this help",
    "/exit": "leave the chat (also /quit or Ctrl-D)",
    "/reset": "start a new conversation (same model and system prompt)",
    "/system": "/system TEXT sets the system prompt, /system shows it, /system --clear removes it",
    "/model": "/model MODEL switches the model and keeps the history; /model shows it",
    "/usage": "tokens and cost of this conversation so far",
    "/retry": "generate the last reply again (it replaces the old one)",
    "/save": "/save [FILE] exports the conversation: FILE.json as JSON, anything else as Markdown",
}
ALIASES = {"/quit": "/exit", "/q": "/exit", "/clear": "/reset"}

KEYS_HELP = [
    ("Enter", "send the message"),
    ("Esc then Enter (Alt+Enter)", "new line inside a message"),
    ('""" ... """', 'a multi-line block: Enter adds lines until the closing """'),
    ("Up / Down", "earlier input (kept across sessions)"),
    ("Ctrl-C", "stop the reply being written (it is kept, marked interrupted); clear the line"),
    ("Ctrl-D", "quit"),
]


def block_is_open(text: str) -> bool:
    """True while a message that starts with triple quotes has not been closed yet."""
    stripped = text.strip()
    if not stripped.startswith(BLOCK_QUOTES):
        return False
    return len(stripped) < 2 * len(BLOCK_QUOTES) or not stripped.endswith(BLOCK_QUOTES)


def message_text(text: str) -> str:
    """The message in what was typed: a triple-quoted block loses its quotes; ``//x`` sends ``/x``."""
    stripped = text.strip()
    if stripped.startswith(BLOCK_QUOTES) and not block_is_open(stripped):
        return stripped[len(BLOCK_QUOTES) : -len(BLOCK_QUOTES)].strip("\n")
    if stripped.startswith("//"):
        return stripped[1:]
    return text


def is_command(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("/") and not stripped.startswith("//")


@dataclass
class CommandResult:
    exit: bool = False
    turn: ChatTurn | None = None  # /retry starts a turn for the caller to show


class Commands:
    """Runs slash commands against a session, printing to ``console``."""

    def __init__(self, session: ChatSession, console: Console) -> None:
        self._session = session
        self._console = console

    def run(self, line: str) -> CommandResult:
        name, _, argument = line.strip().partition(" ")
        name = ALIASES.get(name.lower(), name.lower())
        argument = argument.strip()
        handler = {
            "/help": self._help,
            "/exit": lambda _: CommandResult(exit=True),
            "/reset": self._reset,
            "/system": self._system,
            "/model": self._model,
            "/usage": self._usage,
            "/retry": lambda _: CommandResult(turn=self._session.retry()),
            "/save": self._save,
        }.get(name)
        if handler is None:
            raise UsageError(
                f"Unknown command {name}.",
                hint="/help lists the commands; start a message with // to send text beginning with /.",
            )
        return handler(argument)

    def _say(self, markup: str) -> None:
        self._console.print(markup, highlight=False)

    def _help(self, _: str) -> CommandResult:
        self._say("[bold]Commands[/]")
        for name, text in COMMANDS.items():
            self._say(f"  [cyan]{name:<9}[/] {escape(text)}")
        self._say("[bold]Keys[/]")
        for key, text in KEYS_HELP:
            self._say(f"  [cyan]{escape(key):<27}[/] {escape(text)}")
        self._say("Start a message with // to send text that begins with /.")
        return CommandResult()

    def _reset(self, _: str) -> CommandResult:
        conversation = self._session.reset()
        self._say(f"[dim]New conversation {conversation.id}.[/]")
        return CommandResult()

    def _system(self, argument: str) -> CommandResult:
        if not argument:
            current = self._session.conversation.system
            self._say(f"System prompt: {escape(current)}" if current else "[dim]No system prompt.[/]")
        elif argument == "--clear":
            self._session.set_system(None)
            self._say("[dim]System prompt removed.[/]")
        else:
            self._session.set_system(argument)
            self._say("[dim]System prompt set; it applies from the next reply on.[/]")
        return CommandResult()

    def _model(self, argument: str) -> CommandResult:
        if not argument:
            self._say(f"Model: {escape(self._session.model_name)}")
            return CommandResult()
        with self._console.status(f"Loading {escape(argument)}…"):
            resolved = self._session.switch_model(argument)
        self._say(f"[dim]Now using {escape(resolved.display_name)}; the history is kept.[/]")
        return CommandResult()

    def _usage(self, _: str) -> CommandResult:
        for line in usage_report(self._session):
            self._say(line)
        return CommandResult()

    def _save(self, argument: str) -> CommandResult:
        conversation = self._session.conversation
        path = Path(argument).expanduser() if argument else Path(f"llmctl-chat-{conversation.id}.md")
        kind = export(conversation, path)
        count = len(conversation.turns)
        self._say(f"[dim]Saved {count} turn{'' if count == 1 else 's'} to {escape(str(path))} ({kind}).[/]")
        return CommandResult()


def usage_report(session: ChatSession) -> list[str]:
    """The /usage lines (rich markup)."""
    conversation = session.conversation
    totals = session.totals()
    turns = plural(totals.turns, "turn")
    lines = [f"[bold]Conversation {conversation.id}[/] · {escape(session.model_name)} · {turns}"]
    cached = totals.cached_input_tokens
    reused = f" ({cached:,} reused from cache)" if cached else ""
    lines.append(f"  input tokens:  {format_count(totals.input_tokens)}{reused}")
    lines.append(f"  output tokens: {format_count(totals.output_tokens)}")
    lines.append(f"  total tokens:  {format_count(totals.total_tokens)}")
    if totals.turns_with_unknown_usage:
        unknown = plural(totals.turns_with_unknown_usage, "turn")
        lines.append(f"  [dim]{unknown} with unknown counts left out of these sums[/]")
    lines.append(f"  cost:          {escape(cost_text(totals, session))}")
    tokens, window = session.context_usage()
    if window is not None and tokens is not None:
        context = f"  context:       {tokens:,} of {window:,} tokens"
        if session.turns_out_of_context:
            context += f"; {plural(session.turns_out_of_context, 'oldest turn')} no longer sent"
        lines.append(context)
    return lines


def cost_text(totals: UsageTotals, session: ChatSession) -> str:
    if totals.cost_usd is None:
        hint = session.price_hint()
        return "—" + (f" (no known price: {hint})" if hint else "")
    text = format_cost(totals.cost_usd)
    price = session.price()
    if price is not None and price.is_free:
        text += " (free)"
    if totals.turns_with_unknown_cost:
        text += f" (+ {plural(totals.turns_with_unknown_cost, 'turn')} of unknown cost)"
    return text


def _tokens(usage: Usage) -> str:
    text = f"{format_count(usage.input_tokens)} in"
    if usage.cached_input_tokens is not None and usage.input_tokens is not None:
        new = usage.input_tokens - usage.cached_input_tokens
        text += f" ({usage.cached_input_tokens:,} reused, {new:,} new)"
    return f"{text}, {format_count(usage.output_tokens)} out"


def status_line(outcome: TurnOutcome, session: ChatSession) -> str:
    """``42 in (30 reused, 12 new), 8 out · 0.4 s │ conversation: 120 in, 30 out · $0.0012``."""
    turn, totals = outcome.turn, outcome.totals
    parts = [_tokens(turn.usage), f"{outcome.result.timing.total_s:.1f} s"]
    if turn.status is not RunStatus.OK:
        parts.append(turn.status)
    line = " · ".join(parts)
    line += f" │ conversation: {format_count(totals.input_tokens)} in, {format_count(totals.output_tokens)} out"
    price = session.price()
    if price is None or not price.is_free or totals.turns_with_unknown_cost:
        line += f" · {status_cost(totals)}"
    return line


def status_cost(totals: UsageTotals) -> str:
    """The conversation's cost so far; never "$0" for turns whose cost nobody knows."""
    if totals.cost_usd is None:
        return "cost unknown"
    if totals.turns_with_unknown_cost:
        return f"≥{format_cost(totals.cost_usd)} ({totals.turns_with_unknown_cost} turn(s) of unknown cost)"
    return format_cost(totals.cost_usd)


def recap(conversation: Conversation, console: Console, *, last: int = 3) -> None:
    """Show where a resumed conversation stands: its last few turns."""
    turns = conversation.turns
    console.print(
        f"[dim]Continuing conversation {conversation.id} ({plural(len(turns), 'turn')}, "
        f"model {escape(conversation.model)}).[/]",
        highlight=False,
    )
    if conversation.system:
        console.print(f"[dim]System: {escape(conversation.system)}[/]", highlight=False)
    if len(turns) > last:
        console.print(f"[dim]… {plural(len(turns) - last, 'earlier turn')}[/]", highlight=False)
    for turn in turns[-last:]:
        console.print(f"[bold]you>[/] {escape(turn.user)}", highlight=False)
        console.print(escape(turn.reply) + (" [dim]\\[interrupted][/]" if turn.status is RunStatus.INTERRUPTED else ""))
