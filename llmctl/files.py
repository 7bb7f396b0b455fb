"""Writing llmctl's own files safely: whole or not at all, one read-modify-write at a time.

A reader sees the old file or the new one, never half of either; a writer that fails
leaves no temporary file behind; a file that is a symbolic link stays one (its target
is what gets replaced, so a config kept in a dotfiles repository keeps working).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from llmctl.errors import LlmctlError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; writes stay atomic, concurrent edits may race
    fcntl = None  # type: ignore[assignment]


class FileWriteError(LlmctlError):
    """One of llmctl's files could not be written (permissions, full disk, read-only mount)."""

    def __init__(self, path: Path, exc: OSError) -> None:
        reason = exc.strerror or type(exc).__name__
        super().__init__(
            f"Cannot write {path}: {reason}.",
            hint="Check that its folder exists and is writable, or point llmctl elsewhere (--config, LLMCTL_HOME).",
        )
        self.path = path


def write_target(path: Path) -> Path:
    """Where writing ``path`` really goes: through any symbolic links, to the file they name."""
    return Path(os.path.realpath(path))


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock for ``path`` (on ``.NAME.lock`` beside its real target).

    The lock is a separate file because ``write_atomically`` replaces the file itself: a lock
    on the old inode would not stop a second writer who opened the new one.
    """
    target = write_target(path)
    lock_path = target.with_name(f".{target.name}.lock")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise FileWriteError(path, exc) from exc
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_atomically(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace the content of ``path`` (or of the file its symlink names) with ``text``.

    Written to a uniquely named temporary file in the same folder, flushed to disk, then
    renamed over the target; on any failure the temporary file is removed.
    """
    target = write_target(path)
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise FileWriteError(path, exc) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
