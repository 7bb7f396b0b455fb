"""What a person sees: run a command in a pseudo-terminal of a fixed size and replay its bytes in ``pyte``.

``Terminal`` keeps every byte the program wrote, so assertions read the emulated screen
*and* the scrollback above it (the lines that scrolled off the top), as a person
scrolling back would, not the raw escape sequences.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence

import pyte
from ptyprocess import PtyProcess

_WORD = re.compile(r"\S+")


class Terminal:
    """A program in a ``columns`` by ``rows`` pty, its output replayed by a terminal emulator."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        columns: int = 80,
        rows: int = 24,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.columns, self.rows = columns, rows
        self.screen = pyte.HistoryScreen(columns, rows, history=100_000, ratio=0.5)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        full_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
        full_env.update(env or {})
        self.process = PtyProcess.spawn(list(argv), env=full_env, cwd=cwd, dimensions=(rows, columns))

    # -- driving ------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.process.write(data)

    def interrupt(self) -> None:
        """Ctrl-C, typed: the terminal turns it into SIGINT for the foreground process."""
        self.send(b"\x03")

    def _pump(self, timeout_s: float) -> bool:
        """Read what is there (waiting up to ``timeout_s``); False once the program closed the pty."""
        import select

        ready, _, _ = select.select([self.process.fd], [], [], timeout_s)
        if not ready:
            return True
        try:
            data = os.read(self.process.fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.raw.extend(data)
        self._stream.feed(data)
        return True

    def wait_for(self, condition: Callable[[Terminal], bool] | str, timeout_s: float = 60.0) -> None:
        """Read output until ``condition`` holds (a callable, or text present in the transcript)."""
        check = condition if callable(condition) else (lambda term: condition in term.text())
        deadline = time.monotonic() + timeout_s
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {condition!r}; transcript:\n{self.text()}")
            if not self._pump(0.05) and not check(self):
                raise AssertionError(f"program ended before {condition!r}; transcript:\n{self.text()}")

    def finish(self, timeout_s: float = 60.0) -> int:
        """Read everything until the program exits; its exit status (128+N for signal N)."""
        deadline = time.monotonic() + timeout_s
        while self._pump(0.05):
            if time.monotonic() > deadline:
                self.process.terminate(force=True)
                raise AssertionError(f"program still running after {timeout_s}s; transcript:\n{self.text()}")
        self.process.wait()
        status = self.process.exitstatus
        if status is None:
            return 128 + int(self.process.signalstatus or 0)
        return int(status)

    # -- reading ------------------------------------------------------------------------------

    def _row(self, line: Mapping[int, pyte.screens.Char]) -> str:
        return "".join(line[x].data for x in range(self.columns)).rstrip()

    def lines(self) -> list[str]:
        """Scrollback then screen, one string per terminal row, trailing blank rows dropped."""
        rows = [self._row(line) for line in self.screen.history.top]
        rows += [self._row(self.screen.buffer[y]) for y in range(self.rows)]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def text(self) -> str:
        return "\n".join(self.lines())


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def assert_words_once_in_order(term: Terminal, expected: Sequence[str]) -> None:
    """Every expected word is on the screen or in the scrollback, whole (wrapped, not cut), exactly once, in order."""
    seen = words(term.text())
    for word in expected:
        count = seen.count(word)
        assert count == 1, f"{word!r} appears {count} times; transcript:\n{term.text()}"
    positions = [seen.index(word) for word in expected]
    assert positions == sorted(positions), f"words out of order; transcript:\n{term.text()}"
