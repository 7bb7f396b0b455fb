"""The process's standard streams and arguments, checked once at the entry point.

* Arguments that are not UTF-8 (``llmctl generate $'caf\\xe9'``) are a usage error before
  any command runs: Python would carry them as lone surrogates that fail later, anywhere.
* Standard output is wrapped in ``GuardedStdout``, which remembers a write that failed. The
  entry point then knows that the error it sees came from stdout, not from some other
  file, whoever caught it first (rich and click both turn a broken pipe into exit 1).
* A closed descriptor 0, 1 or 2 (``>&-``) is re-opened on /dev/null, so no file llmctl
  opens later (the ledger) lands on it; a closed stdout still fails when written to.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from llmctl.errors import UsageError


def reject_undecodable_arguments(arguments: Sequence[str]) -> None:
    """Refuse arguments that were not valid UTF-8 on the command line."""
    for position, argument in enumerate(arguments, start=1):
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError as exc:
            raw = os.fsencode(argument)
            offset = len(os.fsencode(argument[: exc.start]))
            raise UsageError(
                f"Command-line argument {position} is not valid UTF-8 (byte {offset}: {raw[offset : offset + 1]!r}).",
                hint="Pass UTF-8 text (convert it with iconv), or pipe it in through stdin as UTF-8.",
            ) from None


class _ClosedStdout(io.TextIOBase):
    """What stdout is when the process started without one: every write fails."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    def isatty(self) -> bool:
        return False


class GuardedStdout:
    """A proxy for stdout that records the first write or flush that failed."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream: Any = stream if stream is not None else _ClosedStdout()
        self.failure: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return int(self.stream.write(text))
        except OSError as exc:
            self.failure = self.failure or exc
            raise

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            self.failure = self.failure or exc
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def reserve_standard_descriptors() -> None:
    """Re-open closed descriptors 0-2 on /dev/null, so later files never get those numbers."""
    for fd in (0, 1, 2):  # in order: the lowest free number is the one being filled
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
    if sys.stderr is None:  # started with 2>&-: errors go nowhere, as asked, rather than onto stdout
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 (lives as long as the process)


def failure_message(failure: OSError) -> str | None:
    """One line for a stdout that could not be written; None for a reader that went away."""
    if isinstance(failure, BrokenPipeError):
        return None
    reason = failure.strerror or str(failure)
    return f"Cannot write to standard output: {reason}."


def silence_stdout(stream: Any) -> None:
    """Send further writes to /dev/null, so the interpreter's last flush cannot fail again."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def install_guard() -> tuple[GuardedStdout, TextIO | None]:
    """Wrap sys.stdout; returns the guard and the stream to put back afterwards."""
    original = sys.stdout
    guard = GuardedStdout(original)
    sys.stdout = guard
    return guard, original
