"""The two front ends of ``llmctl chat``: a prompt_toolkit REPL, and one message per line when piped.

Both hand every line to the same session and slash commands. In the REPL a
reply streams as Markdown through the same renderer as ``generate`` (cli/render.py);
piped, replies are raw text on stdout and everything else goes to stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rich.console import Console

from llmctl.cli import output
from llmctl.cli.chat.commands import COMMANDS, Commands, block_is_open, is_command, message_text, recap, status_line
from llmctl.cli.render import max_tokens_notice, stream_markdown
from llmctl.domain import FinishReason, plural
from llmctl.errors import LlmctlError
from llmctl.paths import data_home
from llmctl.services.chat.session import ChatSession, ChatTurn, TurnOutcome
from llmctl.services.generation import decode_stdin
from llmctl.services.interrupts import Terminated

PROMPT = ">>> "
CONTINUATION = "... "
HISTORY_FILE = "chat_history"


def history_path() -> Path:
    return data_home() / HISTORY_FILE


# -- showing a reply ----------------------------------------------------------------------------


def show_turn(
    turn: ChatTurn, *, console: Console, raw: IO[str] | None = None, interactive: bool | None = None
) -> TurnOutcome:
    """Stream one reply (Markdown on ``console``, or raw text to ``raw``); Ctrl-C stops only the reply.

    The turn is finished (kept in the history, saved, recorded) whatever ended it, before
    anything else happens. In the REPL a failure is printed and the chat goes on; piped,
    Ctrl-C and failures end the run (re-raised after the turn is kept). SIGTERM/SIGHUP, a
    closed pipe and any unexpected exception end the chat in both.
    """
    if interactive is None:
        interactive = raw is None
    for warning in turn.warnings:
        output.warning(warning)
    pieces = turn.deltas()
    captured: list[str] = []

    def tracked() -> Iterator[str]:
        for piece in pieces:
            captured.append(piece)
            yield piece

    stopped: BaseException | None = None
    try:
        if raw is not None:
            for piece in tracked():
                raw.write(piece)
                raw.flush()
        else:
            stream_markdown(tracked(), console, live=console.is_terminal)
    except BaseException as exc:
        stopped = exc
    outcome = turn.finish(stopped)
    for warning in outcome.warnings:
        output.warning(warning)
    if stopped is not None and not isinstance(stopped, (KeyboardInterrupt, LlmctlError)):
        raise stopped  # a closed pipe, stdout full, a bug: the chat ends here
    if isinstance(stopped, Terminated):
        raise stopped
    text = "".join(captured)
    if raw is not None:
        if text and not text.endswith("\n"):
            raw.write("\n")
        raw.flush()
    if not interactive:
        if stopped is not None:
            raise stopped
    elif isinstance(stopped, KeyboardInterrupt):
        console.print("[dim]\\[interrupted][/]", highlight=False)
    elif isinstance(stopped, LlmctlError):
        output.error(stopped.message, stopped.hint)
    return outcome


# -- the terminal REPL --------------------------------------------------------------------------


def _key_bindings() -> Any:
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: Any) -> None:
        buffer = event.current_buffer
        if block_is_open(buffer.text):
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


def _completer() -> Any:
    from prompt_toolkit.completion import Completer, Completion

    class SlashCommands(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
            text = document.text_before_cursor
            if not text.startswith("/") or " " in text or "\n" in text:
                return
            for name in COMMANDS:
                if name.startswith(text):
                    yield Completion(name, start_position=-len(text))

    return SlashCommands()


def _input_history(remember: bool) -> Any:
    """Earlier input, kept across sessions in a file; only in memory with --no-save (nothing on disk)."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    if not remember:
        return InMemoryHistory()
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # What people type can be private: readable by its owner only.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        output.warning(f"Input history not kept: cannot write {path}: {exc.strerror or exc}.")
        return InMemoryHistory()
    return FileHistory(str(path))


def _prompt_session(*, remember: bool) -> Any:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.shortcuts import CompleteStyle

    return PromptSession(
        history=_input_history(remember),
        key_bindings=_key_bindings(),
        multiline=True,
        prompt_continuation=lambda width, line_number, wrapped: CONTINUATION.rjust(width),
        completer=_completer(),
        complete_while_typing=False,  # Tab completes; nothing pops up or reserves lines while typing
        complete_style=CompleteStyle.READLINE_LIKE,
    )


def run_interactive(session: ChatSession, *, resumed: bool, markdown: bool = True) -> None:
    """The REPL: read a message or command, show the reply, repeat until /exit or Ctrl-D.

    Replies are rendered as Markdown, or written as raw text with ``markdown=False`` (--raw).
    """
    console = output.out()
    raw = None if markdown else sys.stdout
    if resumed:
        recap(session.conversation, console)
    output.status(f"Chatting with {session.model_name}. /help for commands, Esc+Enter for a new line, Ctrl-D to quit.")
    prompt = _prompt_session(remember=session.saves_conversations)
    commands = Commands(session, console)
    while True:
        try:
            with _signals_end_the_prompt(prompt):
                typed: str = prompt.prompt(PROMPT)
        except Terminated:
            raise
        except KeyboardInterrupt:
            output.status("(Ctrl-D or /exit to quit)")
            continue
        except EOFError:
            break
        if not typed.strip():
            continue
        try:
            if not _handle(typed, session, commands, console=console, raw=raw, interactive=True):
                break
        except Terminated:
            raise
        except KeyboardInterrupt:
            output.status("(interrupted)")
    output.status(_goodbye(session))


@contextmanager
def _signals_end_the_prompt(prompt: Any) -> Iterator[None]:
    """At the prompt, SIGTERM/SIGHUP end prompt_toolkit's loop and come out of ``prompt()``.

    Raised from inside its event loop (it may be loading the input history right then), the
    exception would be caught there and printed as "Unhandled exception in event loop".
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = ("SIGTERM", "SIGHUP")
    watched = [getattr(signal, name) for name in names if hasattr(signal, name)]
    previous = {signum: signal.getsignal(signum) for signum in watched}

    def ending(signum: int, frame: FrameType | None) -> None:
        handler = previous[signum]
        if not callable(handler):
            signal.signal(signum, handler)
            signal.raise_signal(signum)
            return
        try:
            handler(signum, frame)  # the usual handler: it notes the signal (for the exit code) and raises
        except BaseException as exc:
            app = prompt.app
            future = getattr(app, "future", None)
            if app.is_running and future is not None and not future.done():
                app.exit(exception=exc)
                return
            raise

    for signum in watched:
        signal.signal(signum, ending)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _handle(
    typed: str,
    session: ChatSession,
    commands: Commands,
    *,
    console: Console,
    raw: IO[str] | None = None,
    interactive: bool = False,
) -> bool:
    """One line of input; False when the chat should end."""
    try:
        if is_command(typed):
            try:
                result = commands.run(typed)
            finally:
                for warning in session.take_warnings():
                    output.warning(warning)
            if result.exit:
                return False
            if result.turn is None:
                return True
            turn = result.turn
        else:
            turn = session.start_turn(message_text(typed))
    except LlmctlError as exc:
        if not interactive:
            raise
        output.error(exc.message, exc.hint)
        return True
    outcome = show_turn(turn, console=console, raw=raw, interactive=interactive)
    if outcome.result.completion.finish_reason is FinishReason.LENGTH:
        output.status(max_tokens_notice(session.params.max_tokens))
    notice = session.take_drop_notice()
    if notice:
        output.warning(
            f"{plural(notice, 'oldest turn')} no longer {'fits' if notice == 1 else 'fit'} in the context window of "
            f"{session.model_name} and {'is' if notice == 1 else 'are'} not sent to the model any more "
            "(they stay in the saved conversation; the system prompt is always kept)."
        )
    if raw is None or sys.stderr.isatty():
        output.status(status_line(outcome, session))
    return True


def _goodbye(session: ChatSession) -> str:
    conversation = session.conversation
    if not conversation.turns or not session.saves_conversations:
        return "Bye."
    if session.last_save_failed:
        return "Bye. The conversation could not be saved (see the warnings above)."
    return f"Saved as {conversation.id}; resume with: llmctl chat --continue (or --conversation {conversation.id})."


# -- one message per line (stdin is not a terminal) ------------------------------------------------


def read_messages(stream: IO[bytes]) -> Iterator[str]:
    """Non-blank lines of UTF-8 input; a line starting with triple quotes opens a block until they close."""
    block: list[str] | None = None
    for raw_line in iter(stream.readline, b""):
        line = decode_stdin(raw_line).rstrip("\r\n")
        if block is not None:
            block.append(line)
            if not block_is_open("\n".join(block)):
                yield "\n".join(block)
                block = None
            continue
        if block_is_open(line):
            block = [line]
        elif line.strip():
            yield line
    if block is not None:
        yield "\n".join([*block, '"""'])


def run_piped(session: ChatSession, stdin: IO[bytes], stdout: IO[str]) -> None:
    """Each input line is a message (or a command); each reply is written to ``stdout`` as raw text.

    Command output, status and errors go to stderr. The first failure ends the run with its
    exit code (the replies before it are already written).
    """
    console = output.err()
    commands = Commands(session, console)
    for typed in read_messages(stdin):
        if not _handle(typed, session, commands, console=console, raw=stdout):
            break
    if session.conversation.turns and sys.stderr.isatty():
        output.status(_goodbye(session))
