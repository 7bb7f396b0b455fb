"""SIGTERM and SIGHUP end a call the way Ctrl-C does, and no signal cuts a ledger write in half.

``install()`` (called once by the CLI's entry point) makes SIGTERM and SIGHUP raise
:class:`Terminated`, a ``KeyboardInterrupt``: every ``except KeyboardInterrupt`` and
``finally`` on the call path (stop the stream, keep the text so far, record the row)
runs for them exactly as for Ctrl-C. The process then exits 128 + the signal number
(143 for SIGTERM, 129 for SIGHUP; 130 for SIGINT), as a shell reports a signal death.

Inside ``held()`` a signal is noted, not raised, and raised when the block ends. The
handlers, not the OS signal mask, do the holding: a signal may be delivered to any
thread (a local model generates on its own thread), but Python runs handlers on the
main thread, so the main thread's flag decides.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from llmctl.errors import ExitStatus

HANDLED = ("SIGINT", "SIGTERM", "SIGHUP")


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by SIGTERM or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Hold:
    depth = 0
    pending: int | None = None
    received: int | None = None  # the first SIGTERM/SIGHUP of this process


def exit_code(interrupt: BaseException) -> ExitStatus:
    """128 + the signal's number for SIGTERM/SIGHUP (143, 129), 130 for Ctrl-C."""
    return signal_exit_status(interrupt.signum) if isinstance(interrupt, Terminated) else ExitStatus.INTERRUPTED


def signal_exit_status(signum: int) -> ExitStatus:
    """The exit status of a process ended by signal ``signum`` (one of HANDLED)."""
    return ExitStatus(128 + signum)


def describe(interrupt: BaseException) -> str:
    """How the user stopped it, for "… before Ctrl-C" messages."""
    return signal.Signals(interrupt.signum).name if isinstance(interrupt, Terminated) else "Ctrl-C"


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def termination_exit_code(code: int | str | None) -> int | str | None:
    """The exit code to use instead of ``code``: typer turns every KeyboardInterrupt it catches
    into exit 130, also the one a SIGTERM/SIGHUP raised; those get 128 + their number."""
    if code == ExitStatus.INTERRUPTED and _Hold.received is not None:
        return signal_exit_status(_Hold.received)
    return code


def _handler(signum: int, frame: FrameType | None) -> None:
    if signum != signal.SIGINT and _Hold.received is None:
        _Hold.received = signum
    if _Hold.depth:
        if _Hold.pending is None:
            _Hold.pending = signum
        return
    _raise_for(signum)


def install() -> None:
    """Route SIGINT, SIGTERM and SIGHUP through ``_handler`` (main thread only; no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _Hold.received = _Hold.pending = None
    for name in HANDLED:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _handler)


@contextmanager
def held() -> Iterator[None]:
    """Defer SIGINT/SIGTERM/SIGHUP until the block is done, then raise the first one that came."""
    _Hold.depth += 1
    try:
        yield
    finally:
        _Hold.depth -= 1
        if not _Hold.depth and _Hold.pending is not None:
            pending, _Hold.pending = _Hold.pending, None
            _raise_for(pending)
