"""Saved chat conversations: one JSON file per conversation under ``$LLMCTL_HOME/conversations``.

A conversation is written again after every turn (atomically, through a temporary file of
its own, readable by its owner only), so a crash or Ctrl-C loses at most the turn in flight.
Files are plain JSON a user can read, grep or delete. ``--continue`` picks the one updated
last; ``--conversation ID`` accepts any unique prefix of an id.

Never lost, never corrupted:

- The file name comes from the store, never from the JSON: a loaded conversation's id *is*
  its file's name, and a new id must be a plain name (no ``/``, no ``..``).
- Two chats on one conversation keep each other's turns: a save holds a lock on the
  conversation (``fcntl.flock`` on ``.ID.lock``), reads what is on disk, takes in the turns
  another process added (every turn has an id), then writes.
- A damaged file (bad JSON, wrong types, nulls) is skipped by ``list()`` and ``latest()``,
  never fatal for the others; ``latest_readable()`` also says which newer files it skipped.
- A save that fails (read-only folder, full disk) raises ``InputError``; the chat turns it
  into a warning and goes on.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from llmctl.errors import InputError, UsageError
from llmctl.paths import data_home
from llmctl.services.chat.conversation import Conversation, conversation_from_json, conversation_to_json, now

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    model: str
    turns: int
    title: str
    created_at: datetime
    updated_at: datetime
    path: Path


@dataclass(frozen=True)
class Latest:
    """The conversation updated last that could be read, and the newer files that could not."""

    conversation: Conversation | None
    skipped: tuple[Path, ...] = ()


class ConversationStore:
    """Reads and writes conversations as JSON files in one folder."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else data_home() / "conversations"

    def path_of(self, conversation_id: str) -> Path:
        """The file of ``conversation_id``; an id that is not a plain file name is refused."""
        if not SAFE_ID.fullmatch(conversation_id):
            raise InputError(
                f"{conversation_id!r} is not a conversation id (letters, digits, '.', '_' and '-' only).",
                hint="`llmctl chat --list` shows saved conversations and their ids.",
            )
        return self.root / f"{conversation_id}.json"

    def save(self, conversation: Conversation) -> Path:
        """Write ``conversation``, taking in turns another process saved meanwhile."""
        path = self.path_of(conversation.id)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._locked(conversation.id):
                self._merge_from_disk(conversation, path)
                conversation.updated_at = now()
                text = json.dumps(conversation_to_json(conversation), indent=2, ensure_ascii=False) + "\n"
                _write_atomically(path, text)
        except OSError as exc:
            raise InputError(
                f"Could not save the conversation to {path}: {exc.strerror or exc}.",
                hint="Free some disk space or fix the folder's permissions (or set LLMCTL_HOME elsewhere).",
            ) from None
        conversation.saved_turn_ids = {turn.id for turn in conversation.turns}
        return path

    def _merge_from_disk(self, conversation: Conversation, path: Path) -> None:
        if not path.is_file():
            return
        try:
            on_disk = self._read(path)
        except InputError:
            return  # a damaged file: ours replaces it
        known = {turn.id for turn in conversation.turns} | conversation.saved_turn_ids
        theirs = [turn for turn in on_disk.turns if turn.id not in known]
        if theirs:
            conversation.turns = sorted([*conversation.turns, *theirs], key=lambda turn: turn.at)

    @contextlib.contextmanager
    def _locked(self, conversation_id: str) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; saves stay atomic, concurrent turns may be lost
            yield
            return
        with open(self.root / f".{conversation_id}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self, reference: str) -> Conversation:
        """The conversation with id ``reference``, or the only one whose id starts with it."""
        reference = reference.strip()
        exact = self.root / f"{reference}.json"
        if SAFE_ID.fullmatch(reference) and exact.is_file():
            return self._read(exact)
        matches = [p for p in self._files() if p.stem.startswith(reference)] if reference else []
        if len(matches) == 1:
            return self._read(matches[0])
        if not matches:
            raise UsageError(
                f"No saved conversation {reference!r}.",
                hint="`llmctl chat --list` shows saved conversations and their ids.",
            )
        shown = ", ".join(sorted(p.stem for p in matches)[:5])
        raise UsageError(
            f"{reference!r} matches {len(matches)} conversations ({shown}).",
            hint="Give more of the id.",
        )

    def latest(self) -> Conversation | None:
        """The readable conversation updated last, if there is any."""
        return self.latest_readable().conversation

    def latest_readable(self) -> Latest:
        """The readable conversation updated last, and the damaged files modified after it."""
        summaries, damaged = self.scan()
        if not summaries:
            return Latest(None, tuple(damaged))
        newest = summaries[0]
        cutoff = newest.path.stat().st_mtime if newest.path.exists() else newest.updated_at.timestamp()
        skipped = tuple(path for path in damaged if _mtime(path) > cutoff)
        return Latest(self._read(newest.path), skipped)

    def list(self) -> list[ConversationSummary]:
        """All readable conversations, most recently updated first. Unreadable files are skipped."""
        return self.scan()[0]

    def scan(self) -> tuple[builtins.list[ConversationSummary], builtins.list[Path]]:
        """(readable conversations, most recently updated first; the files that could not be read)."""
        summaries: builtins.list[ConversationSummary] = []
        damaged: builtins.list[Path] = []
        for path in self._files():
            try:
                conversation = self._read(path)
            except InputError:
                damaged.append(path)
                continue
            summaries.append(
                ConversationSummary(
                    id=conversation.id,
                    model=conversation.model,
                    turns=len(conversation.turns),
                    title=conversation.title,
                    created_at=conversation.created_at,
                    updated_at=conversation.updated_at,
                    path=path,
                )
            )
        summaries.sort(key=lambda s: (s.updated_at, s.id), reverse=True)
        return summaries, sorted(damaged)

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return iter(())
        return (p for p in self.root.glob("*.json") if p.is_file() and SAFE_ID.fullmatch(p.stem))

    def _read(self, path: Path) -> Conversation:
        try:
            text = path.read_text(encoding="utf-8")
            # A lone surrogate escape (\ud800) parses, but is no text: it could be neither shown nor sent.
            json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8")
            conversation = conversation_from_json(json.loads(text), path.stem)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise InputError(
                f"Could not read the saved conversation {path}: {exc}",
                hint="The file may be damaged; move it out of the way to start afresh.",
            ) from exc
        conversation.saved_turn_ids = {turn.id for turn in conversation.turns}
        return conversation


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file of our own (mode 0600), never half-written."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
