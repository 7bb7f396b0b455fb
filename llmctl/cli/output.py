"""Two consoles: results go to stdout, status, usage and errors to stderr.

So ``llmctl generate ... > out.txt`` leaves only the answer in the file.
Markdown is rendered only when stdout is a terminal; piped output is raw text.
Tables (``table``, ``facts``) are rich tables on a terminal and tab-separated lines,
never cut or wrapped, anywhere else.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from llmctl.domain import Usage

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

_stdout: Console | None = None
_stderr: Console | None = None


def out() -> Console:
    global _stdout
    if _stdout is None or _stdout.file is not sys.stdout:
        from rich.console import Console  # lazy: rich costs startup time commands without output skip

        # On a terminal, long lines wrap at word boundaries; piped, a line stays one line.
        _stdout = Console(file=sys.stdout, highlight=False, soft_wrap=not sys.stdout.isatty())
    return _stdout


def err() -> Console:
    global _stderr
    if _stderr is None or _stderr.file is not sys.stderr:
        from rich.console import Console

        # On a terminal, messages wrap at word boundaries; piped, a message stays one line.
        _stderr = Console(file=sys.stderr, highlight=False, soft_wrap=not sys.stderr.isatty())
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


# -- tables ----------------------------------------------------------------------------------------------------

Cell = str | int | None  # None: unknown; an int gets thousands separators on a terminal only
UNKNOWN_ON_TERMINAL = "—"
UNKNOWN_PIPED = "unknown"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # would break a line, or drive a terminal


@dataclass(frozen=True)
class Column:
    """One column of a ``table``: its heading, and how a terminal may lay it out.

    Piped output ignores the layout: every value is written whole, on one line.
    """

    heading: str
    justify: Literal["left", "right"] = "left"
    no_wrap: bool = False  # short values (numbers, dates): never folded onto a second line
    clip: bool = False  # a preview (a first line of text): one line, cut with "…" where the terminal is narrow


def table(
    columns: Sequence[Column],
    rows: Iterable[Sequence[Cell]],
    *,
    title: str | None = None,
    footer: Sequence[Cell] | None = None,
) -> None:
    """Rows on stdout: a rich table on a terminal; else a header line, then one tab-separated line per row.

    ``footer`` (totals) is the last line when piped. ``None`` cells are unknown: "—" on a terminal,
    "unknown" when piped; ``int`` cells are ``1,234`` on a terminal and ``1234`` piped. The title is
    for people; piped output has none.
    """
    rows = [list(row) for row in rows]
    for row in (*rows, *([footer] if footer is not None else [])):
        if len(row) != len(columns):
            raise ValueError(f"a row has {len(row)} cells for {len(columns)} columns")
    if not out().is_terminal:
        _write_tsv([c.heading for c in columns], rows + ([list(footer)] if footer is not None else []))
        return
    from rich import box
    from rich.table import Table

    # A rule under the header (and above totals), no vertical lines, two spaces between columns:
    # on an 80-column terminal every character of padding is one a value would have to fold for.
    grid = Table(
        box=box.SIMPLE,
        show_edge=False,
        padding=(0, 1, 0, 0),
        header_style="bold",
        show_footer=footer is not None,
    )
    for index, column in enumerate(columns):
        grid.add_column(
            column.heading,
            justify=column.justify,
            no_wrap=column.no_wrap,
            overflow="fold",  # values are never cut on a terminal either, but a clipped preview
            footer=_terminal_text(footer[index]) if footer is not None else "",
            footer_style="bold",
        )
    for row in rows:
        grid.add_row(*(_terminal_text(cell, clip=column.clip) for cell, column in zip(row, columns, strict=True)))
    _print_table(grid, title)


def facts(pairs: Iterable[tuple[str, Cell]], *, title: str | None = None) -> None:
    """``label: value`` pairs (one record): aligned on a terminal; ``label<TAB>value`` lines when piped."""
    pairs = list(pairs)
    if not out().is_terminal:
        _write_tsv(None, [[label, value] for label, value in pairs])
        return
    from rich.table import Table

    grid = Table(show_header=False, box=None, pad_edge=False)
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in pairs:
        grid.add_row(_terminal_text(label), _terminal_text(value))
    _print_table(grid, title)


def section_break() -> None:
    """A blank line between two tables or records (piped, it tells a reader where the next header is)."""
    out().print()


def tsv_cell(value: Cell) -> str:
    """A value as one tab-separated field: whole, on one line, no control characters."""
    if value is None:
        return UNKNOWN_PIPED
    return str(value) if isinstance(value, int) else _CONTROL.sub(" ", value)


def _write_tsv(header: Sequence[str] | None, rows: Iterable[Sequence[Cell]]) -> None:
    lines = [] if header is None else ["\t".join(tsv_cell(heading) for heading in header)]
    lines += ["\t".join(tsv_cell(cell) for cell in row) for row in rows]
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


def _terminal_text(value: Cell, *, clip: bool = False) -> Any:
    from rich.text import Text  # a Text, not a str: a model id like "[b]" is not markup

    if value is None:
        return Text(UNKNOWN_ON_TERMINAL)
    text = f"{value:,}" if isinstance(value, int) else _CONTROL.sub(" ", value)
    # A clipped cell stays one line; its column still shrinks like any other when the table is too wide.
    return Text(text, no_wrap=True, overflow="ellipsis") if clip else Text(text)


def _print_table(grid: Table, title: str | None) -> None:
    from rich.text import Text

    # The title is a line of its own, wrapped at the terminal's width: as the table's own title rich
    # would wrap it at the table's width, a narrow column of words above a narrow table.
    if title:
        out().print(Text(title, style="table.title"), soft_wrap=False)
    out().print(grid, soft_wrap=False)


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


def silence_stdout() -> None:
    """After the reader of our pipe went away, drop further writes instead of raising."""
    from llmctl.cli.stdio import silence_stdout as silence_stream

    silence_stream(sys.stdout)
