"""Two consoles: results go to stdout, status, usage and errors to stderr.

So ``llmctl generate ... > out.txt`` leaves only the answer in the file.
Markdown is rendered only when stdout is a terminal; piped output is raw text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from llmctl.domain import Usage

if TYPE_CHECKING:
    from rich.console import Console

_stdout: Console | None = None
_stderr: Console | None = None


def out() -> Console:
    global _stdout
    if _stdout is None or _stdout.file is not sys.stdout:
        from rich.console import Console  # lazy: rich costs startup time commands without output skip

        _stdout = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    return _stdout


def err() -> Console:
    global _stderr
    if _stderr is None or _stderr.file is not sys.stderr:
        from rich.console import Console

        _stderr = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    return _stderr


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error(message: str, hint: str | None = None) -> None:
    err().print(f"[bold red]Error:[/] {_escape(message)}")
    if hint:
        err().print(f"[dim]{_escape(hint)}[/]")


def warning(message: str) -> None:
    err().print(f"[yellow]Warning:[/] {_escape(message)}")


def status(message: str) -> None:
    err().print(f"[dim]{_escape(message)}[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def format_count(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def usage_line(usage: Usage, cost: str | None = None) -> str:
    """``Tokens: 12 input, 8 output, 20 total (exact); cost $0.000123`` — unknown stays unknown."""
    line = (
        f"Tokens: {format_count(usage.input_tokens)} input, "
        f"{format_count(usage.output_tokens)} output, "
        f"{format_count(usage.total_tokens)} total ({usage.source.value})"
    )
    if usage.cached_input_tokens:
        line += f", {usage.cached_input_tokens:,} input tokens cached"
    if cost:
        line += f"; {cost}"
    return line


def write_raw_stream(pieces: Iterable[str]) -> str:
    """Write text pieces to stdout as they come; return all of it."""
    written: list[str] = []
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
        written.append(piece)
    return "".join(written)


def end_raw_text(text: str) -> None:
    if text and not text.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()


@contextmanager
def live_markdown() -> Iterator[Any]:
    """A callable that re-renders the growing answer as Markdown in place."""
    from rich.live import Live
    from rich.markdown import Markdown

    with Live(console=out(), refresh_per_second=10, vertical_overflow="visible") as live:

        def update(text: str) -> None:
            live.update(Markdown(text))

        yield update


def markdown(text: str) -> None:
    from rich.markdown import Markdown

    out().print(Markdown(text))


def silence_stdout() -> None:
    """After the reader of our pipe went away, drop further writes instead of raising."""
    import io
    import os

    try:
        descriptor = sys.stdout.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
