"""Download progress on the terminal: one bar for the whole download and one for the current file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmctl.cli import output
from llmctl.domain import plural

if TYPE_CHECKING:
    from rich.console import Console

    from llmctl.hub.download import DownloadPlan


class LineProgress:
    """For a log or a pipe: one line per finished file."""

    def __init__(self) -> None:
        self._sizes: dict[str, int | None] = {}

    def start(self, plan: DownloadPlan) -> None:
        pass

    def file_started(self, path: str, size: int | None, resumed_from: int) -> None:
        from llmctl.domain import human_bytes

        self._sizes[path] = size
        if resumed_from:
            output.status(f"resuming {path} at {human_bytes(resumed_from)} of {human_bytes(size)}")

    def advance(self, nbytes: int) -> None:
        pass

    def file_finished(self, path: str) -> None:
        from llmctl.domain import human_bytes

        output.status(f"downloaded {path} ({human_bytes(self._sizes.get(path))})")

    def finish(self) -> None:
        pass


class RichDownloadProgress:
    """One bar for the whole download (bytes across every file) and one for the current file."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._overall: Any = None
        self._file: Any = None

    def start(self, plan: DownloadPlan) -> None:
        pending = [f for f in plan.files if f.transfers]
        total = sum(f.size or 0 for f in pending)
        already = sum(f.partial_bytes for f in pending)
        self.progress.start()
        self._overall = self.progress.add_task(
            f"total ({plural(len(pending), 'file')})", total=total, completed=already
        )

    def file_started(self, path: str, size: int | None, resumed_from: int) -> None:
        label = path if len(path) <= 40 else "…" + path[-39:]
        self._file = self.progress.add_task(label, total=size, completed=resumed_from)

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self._overall, nbytes)
        if self._file is not None:
            self.progress.advance(self._file, nbytes)

    def file_finished(self, path: str) -> None:
        if self._file is not None:
            self.progress.remove_task(self._file)
            self._file = None

    def finish(self) -> None:
        self.progress.stop()
