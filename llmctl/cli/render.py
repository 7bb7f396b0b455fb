"""Streaming an answer to a terminal: every word shown once, wrapped at the window width.

One renderer serves ``generate`` and ``chat``. Finished Markdown blocks (up to a blank line
outside a code fence) are printed once, for good, like any other output; only the block
still being written is redrawn in place, and never more rows of it than the window has:
rows that would scroll out of the window are printed for good too. So a reply taller than
the window never repeats in the scrollback, and a redraw costs one block, not the answer.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING

from llmctl.services import interrupts

if TYPE_CHECKING:
    from rich.console import Console

REDRAW_INTERVAL_S = 0.08


def finished_blocks_end(text: str) -> int:
    """Where the finished blocks of ``text`` end (0: none yet): the last blank line outside a code fence."""
    end, in_fence, position = 0, False, 0
    for line in text.splitlines(keepends=True):
        position += len(line)
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not line.strip() and not in_fence and position < len(text):
            end = position
    return end


class MarkdownStream:
    """Feed text pieces as they arrive; ``close()`` leaves the whole answer printed once.

    ``live=False`` (output is not a terminal, Markdown forced) prints each finished block
    when it completes and the rest at the end, with no cursor movement.
    """

    def __init__(
        self,
        console: Console,
        *,
        live: bool = True,
        interval_s: float = REDRAW_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console = console
        self._file: IO[str] = console.file
        self._live = live
        self._interval_s = interval_s
        self._clock = clock
        self._text = ""
        self._shown = 0  # characters of the answer whose blocks are printed for good
        self._committed = 0  # rows of the current block printed for good (it outgrew the window)
        self._live_rows = 0  # rows of the current block drawn in place, to be redrawn
        self._last_draw = float("-inf")
        self._closed = False

    @property
    def text(self) -> str:
        return self._text

    def feed(self, piece: str) -> None:
        self._text += piece
        now = self._clock()
        if now - self._last_draw >= self._interval_s:
            self._last_draw = now
            self._refresh(final=False)

    def close(self) -> None:
        """Print what is not printed for good yet. Safe to call twice (the second does nothing)."""
        if self._closed:
            return
        self._closed = True
        self._refresh(final=True)

    # -- drawing --------------------------------------------------------------------------------

    def _render(self, markdown_text: str) -> list[str]:
        """``markdown_text`` as the rows a terminal of the console's width shows (ANSI styles kept)."""
        from rich.markdown import Markdown

        if not markdown_text.strip():
            return []
        with self._console.capture() as capture:
            self._console.print(Markdown(markdown_text), soft_wrap=False)
        rows = capture.get().rstrip("\n").split("\n")
        while rows and not rows[0]:
            rows.pop(0)  # rich opens some blocks (lists) with an empty row; blocks are spaced by us
        return rows

    def _refresh(self, *, final: bool) -> None:
        frame: list[str] = [self._erase_live()] if self._live else []
        rows_for_good: list[str] = []
        done = len(self._text) if final else finished_blocks_end(self._text)
        if done > self._shown:
            rows_for_good += self._render(self._text[self._shown : done])[self._committed :]
            if not final:
                rows_for_good.append("")  # the blank line Markdown puts between blocks
            self._shown, self._committed = done, 0
        live_rows: list[str] = []
        if self._live and not final:
            tail = self._render(self._text[self._shown :])
            overflow = len(tail) - self._committed - max(1, self._console.height - 2)
            if overflow > 0:
                rows_for_good += tail[self._committed : self._committed + overflow]
                self._committed += overflow
            live_rows = tail[self._committed :]
        # Every row ends with a newline, the live ones too: the cursor waits at the start of the
        # row below, so what the terminal itself prints there (the "^C" it echoes) is erased
        # with the live rows instead of pushing them up a row.
        frame += [row + "\n" for row in rows_for_good + live_rows]
        with interrupts.held():  # a frame is never half on screen: a signal waits for the write
            self._file.write("".join(frame))
            self._file.flush()
            self._live_rows = len(live_rows)

    def _erase_live(self) -> str:
        """Back to the first row of the part drawn in place, and clear from there down."""
        up = f"\x1b[{self._live_rows}A" if self._live_rows else ""
        return f"\r{up}\x1b[J"


def stream_markdown(pieces: Iterator[str], console: Console, *, live: bool = True) -> str:
    """Render ``pieces`` as they come; on any exit (Ctrl-C included) the text received stays, once."""
    renderer = MarkdownStream(console, live=live)
    try:
        for piece in pieces:
            renderer.feed(piece)
    finally:
        renderer.close()
    return renderer.text


def write_raw_stream(pieces: Iterator[str], file: IO[str] | None = None) -> str:
    """Write text pieces as they come; return all of it. Ends with a newline when text was written."""
    target = file if file is not None else sys.stdout
    written: list[str] = []
    try:
        for piece in pieces:
            target.write(piece)
            target.flush()
            written.append(piece)
    finally:
        text = "".join(written)
        if text and not text.endswith("\n"):
            target.write("\n")
        target.flush()
    return text


def max_tokens_notice(max_tokens: int | None) -> str:
    """The answer was cut by the token limit, not finished: say so, and how to get more."""
    if max_tokens is None:
        return "Stopped at the model's output limit; raise it with --max-tokens to get more."
    return f"Stopped at --max-tokens {max_tokens}; raise it to get more."


_FENCE = re.compile(r"^(?P<fence>```+|~~~+)[^\n]*\n(?P<code>.*?)(?:^(?P=fence)[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)


def first_code_block(text: str) -> str | None:
    """The contents of the first fenced code block (to the end, if the answer stopped inside it)."""
    match = _FENCE.search(text)
    return None if match is None else match.group("code")
