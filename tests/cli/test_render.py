"""The streaming renderer replayed through a terminal emulator: whole answer, once, in order, wrapped.

Fast, table-driven: the renderer writes into a console of a given size, and ``pyte`` shows
what a person would see on that screen and in its scrollback. (tests/cli/test_screen.py runs
the real commands in a pseudo-terminal.)
"""

from __future__ import annotations

import io

import pyte
import pytest
from rich.console import Console

from llmctl.cli.render import MarkdownStream, finished_blocks_end, stream_markdown

PARAGRAPH = " ".join(f"w{i:03d}" for i in range(160))
TALL_LIST = "\n".join(f"{i}. item{i:03d} of the list" for i in range(1, 41))
LONG_WORD = "".join(f"{i:04d}" for i in range(150))  # 600 characters, no space to break at
MIXED = (
    "# Title\n\nSome intro words here.\n\n"
    + "\n".join(f"- bullet{i:02d} text" for i in range(16))
    + "\n\n```python\n"
    + "\n".join(f"code_line_{i:02d} = {i}" for i in range(16))
    + "\n```\n\nclosing01 closing02 closing03"
)


class Replay:
    """A console of ``columns`` x ``rows`` whose bytes go to a pyte screen with scrollback."""

    def __init__(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        self.file = io.StringIO()
        self.console = Console(file=self.file, force_terminal=True, width=columns, height=rows, color_system="standard")
        self.screen = pyte.HistoryScreen(columns, rows, history=100_000)
        self.screen.set_mode(pyte.modes.LNM)  # a pty would turn "\n" into "\r\n"
        self.stream = pyte.Stream(self.screen)
        self.fed = 0

    def pump(self) -> None:
        data = self.file.getvalue()
        self.stream.feed(data[self.fed :])
        self.fed = len(data)

    def lines(self) -> list[str]:
        self.pump()
        rows = ["".join(line[x].data for x in range(self.columns)).rstrip() for line in self.screen.history.top]
        rows += ["".join(self.screen.buffer[y][x].data for x in range(self.columns)).rstrip() for y in range(self.rows)]
        while rows and not rows[-1]:
            rows.pop()
        return rows


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _render(text: str, columns: int, rows: int, piece_size: int, *, pump_each: bool = True) -> Replay:
    replay = Replay(columns, rows)
    renderer = MarkdownStream(replay.console, interval_s=0.0)  # redraw on every piece: the hardest case
    for piece in _pieces(text, piece_size):
        renderer.feed(piece)
        if pump_each:
            replay.pump()
    renderer.close()
    return replay


def _words(lines: list[str]) -> list[str]:
    return " ".join(lines).split()


SIZES = [(80, 24), (40, 12), (20, 6)]
PIECES = [2, 11, 10_000]


@pytest.mark.parametrize(("columns", "rows"), SIZES)
@pytest.mark.parametrize("piece_size", PIECES)
def test_a_long_paragraph_is_wrapped_and_shown_once_in_order(columns: int, rows: int, piece_size: int) -> None:
    lines = _render(PARAGRAPH, columns, rows, piece_size).lines()
    assert _words(lines) == PARAGRAPH.split()
    assert all(len(line) <= columns for line in lines)


@pytest.mark.parametrize(("columns", "rows"), SIZES)
@pytest.mark.parametrize("piece_size", PIECES)
def test_a_list_taller_than_the_window_is_not_repeated(columns: int, rows: int, piece_size: int) -> None:
    lines = _render(TALL_LIST, columns, rows, piece_size).lines()
    seen = _words(lines)
    for i in range(1, 41):
        assert seen.count(f"item{i:03d}") == 1, "\n".join(lines)
    assert [w for w in seen if w.startswith("item")] == [f"item{i:03d}" for i in range(1, 41)]
    assert len(lines) <= 40 * 2  # 40 items, some wrapped on a narrow screen; never printed again


@pytest.mark.parametrize(("columns", "rows"), SIZES)
@pytest.mark.parametrize("piece_size", [3, 10_000])
def test_an_unbroken_line_is_folded_not_cut(columns: int, rows: int, piece_size: int) -> None:
    lines = _render(f"Look: {LONG_WORD} end.", columns, rows, piece_size).lines()
    joined = "".join(line.strip() for line in lines)
    assert joined.count(LONG_WORD) == 1, "\n".join(lines)


@pytest.mark.parametrize(("columns", "rows"), SIZES)
@pytest.mark.parametrize("piece_size", [4, 10_000])
def test_markdown_blocks_render_once_in_order(columns: int, rows: int, piece_size: int) -> None:
    lines = _render(MIXED, columns, rows, piece_size).lines()
    seen = _words(lines)
    expected = ["Title", "intro"] + [f"bullet{i:02d}" for i in range(16)]
    expected += [f"code_line_{i:02d}" for i in range(16)] + ["closing01", "closing02", "closing03"]
    for word in expected:
        assert seen.count(word) == 1, f"{word}:\n" + "\n".join(lines)
    positions = [seen.index(word) for word in expected]
    assert positions == sorted(positions)
    assert not any("```" in line for line in lines)  # rendered, not shown as source
    assert any("•" in line for line in lines)


def test_rows_already_on_screen_are_redrawn_not_appended() -> None:
    """Between redraws the screen shows the answer so far, once: the live block is redrawn in place."""
    replay = Replay(40, 12)
    renderer = MarkdownStream(replay.console, interval_s=0.0)
    for index, piece in enumerate(_pieces(PARAGRAPH, 4)):
        renderer.feed(piece)
        if index % 25 == 0:
            seen = _words(replay.lines())
            assert len(seen) == len(set(seen)), "\n".join(replay.lines())
    renderer.close()


def test_interrupted_stream_keeps_what_arrived_once() -> None:
    replay = Replay(40, 12)

    def pieces() -> object:
        for index, piece in enumerate(_pieces(PARAGRAPH, 5)):
            if index == 60:
                raise KeyboardInterrupt
            yield piece

    with pytest.raises(KeyboardInterrupt):
        stream_markdown(pieces(), replay.console)  # type: ignore[arg-type]
    seen = _words(replay.lines())
    shown = PARAGRAPH[: 60 * 5].split()
    assert seen[: len(shown) - 1] == shown[:-1]  # the last word may have been cut by the interrupt
    assert len(seen) == len(set(seen))


def test_not_a_terminal_prints_blocks_without_cursor_movement() -> None:
    file = io.StringIO()
    console = Console(file=file, force_terminal=False, width=60)
    renderer = MarkdownStream(console, live=False, interval_s=0.0)
    for piece in _pieces(MIXED, 3):
        renderer.feed(piece)
    renderer.close()
    written = file.getvalue()
    assert "\x1b[" not in written
    assert written.count("bullet07") == 1 and written.count("closing03") == 1


def test_redraw_cost_stays_with_the_current_block() -> None:
    """Each redraw renders only the block being written, so the work grows with the answer, not its square."""
    console = Console(file=io.StringIO(), force_terminal=True, width=80, height=24)
    renderer = MarkdownStream(console, interval_s=0.0)
    rendered: list[int] = []
    original = renderer._render

    def counting(text: str) -> list[str]:
        rendered.append(len(text))
        return original(text)

    renderer._render = counting  # type: ignore[method-assign]
    paragraphs = [f"para{i:03d} " + "word " * 30 for i in range(60)]
    for paragraph in paragraphs:
        for piece in _pieces(paragraph + "\n\n", 20):
            renderer.feed(piece)
    renderer.close()
    assert max(rendered) < 3 * len(paragraphs[0])


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("a\n\nb", 3),
        ("```\na\n\nb", 0),  # never inside a code fence
        ("```\na\n```\n\nb", 11),
        ("one line", 0),
        ("a\n\n", 0),  # the blank line is the end of the text: the block may go on
    ],
)
def test_finished_blocks_end(text: str, end: int) -> None:
    assert finished_blocks_end(text) == end
