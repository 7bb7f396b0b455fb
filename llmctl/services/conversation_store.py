"""Saved chat conversations: one JSON file per conversation under ``$LLMCTL_HOME/conversations``.

A conversation is written again after every turn (atomically, readable by its
owner only), so a crash or Ctrl-C loses at most the turn in flight. Files are
plain JSON a user can read, grep or delete. ``--continue`` picks the one
updated last; ``--conversation ID`` accepts any unique prefix of an id.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmctl.domain import CountSource, Message, Usage
from llmctl.errors import InputError, UsageError
from llmctl.paths import data_home

FORMAT_VERSION = 1
STATUS_OK = "ok"
STATUS_INTERRUPTED = "interrupted"
STATUS_ERROR = "error"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Turn:
    """One exchange: what the user said and what the model answered (possibly cut short)."""

    user: str
    reply: str
    model: str
    status: str = STATUS_OK  # ok | interrupted | error
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    error: str | None = None
    at: datetime = field(default_factory=now)

    @property
    def in_context(self) -> bool:
        """Whether the turn is sent back to the model: not a failed or interrupted one that produced nothing."""
        return self.status == STATUS_OK or bool(self.reply.strip())


@dataclass
class Conversation:
    id: str
    model: str  # the reference to resume with: an alias, PROVIDER/MODEL-ID or a folder
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)

    def messages(self, start: int = 0) -> list[Message]:
        """System prompt, then the turns from ``start`` on that have a reply."""
        messages = [Message("system", self.system)] if self.system else []
        for turn in self.turns[start:]:
            if turn.in_context:
                messages += [Message("user", turn.user), Message("assistant", turn.reply)]
        return messages

    @property
    def title(self) -> str:
        """The first line of the first message, for listings."""
        for turn in self.turns:
            for line in turn.user.splitlines():
                if line.strip():
                    return line.strip()
        return ""


@dataclass(frozen=True)
class UsageTotals:
    """Tokens (and cost) of a whole conversation. Counts sum the turns that know them."""

    turns: int
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    cost_usd: float | None
    turns_with_unknown_usage: int = 0
    turns_with_unknown_cost: int = 0

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


def usage_totals(turns: Sequence[Turn]) -> UsageTotals:
    def total(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    costs = [t.cost_usd for t in turns if t.cost_usd is not None]
    return UsageTotals(
        turns=len(turns),
        input_tokens=total([t.usage.input_tokens for t in turns]),
        output_tokens=total([t.usage.output_tokens for t in turns]),
        cached_input_tokens=total([t.usage.cached_input_tokens for t in turns]),
        cost_usd=sum(costs) if costs else None,
        turns_with_unknown_usage=sum(1 for t in turns if t.usage.input_tokens is None or t.usage.output_tokens is None),
        turns_with_unknown_cost=sum(1 for t in turns if t.cost_usd is None),
    )


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    model: str
    turns: int
    title: str
    created_at: datetime
    updated_at: datetime
    path: Path


def new_conversation_id() -> str:
    """Sortable by creation time, unique enough for one user: ``20250614-093012-5f3a``."""
    return f"{now().astimezone():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class ConversationStore:
    """Reads and writes conversations as JSON files in one folder."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else data_home() / "conversations"

    def path_of(self, conversation_id: str) -> Path:
        return self.root / f"{conversation_id}.json"

    def save(self, conversation: Conversation) -> Path:
        from llmctl.config import write_private  # lazy: llmctl.config imports pydantic (slow start)

        conversation.updated_at = now()
        path = self.path_of(conversation.id)
        write_private(path, json.dumps(conversation_to_json(conversation), indent=2, ensure_ascii=False) + "\n")
        return path

    def load(self, reference: str) -> Conversation:
        """The conversation with id ``reference``, or the only one whose id starts with it."""
        reference = reference.strip()
        exact = self.path_of(reference)
        if reference and "/" not in reference and exact.is_file():
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
        """The conversation updated last, if there is any."""
        summaries = self.list()
        return self._read(summaries[0].path) if summaries else None

    def list(self) -> list[ConversationSummary]:
        """All readable conversations, most recently updated first. Unreadable files are skipped."""
        summaries = []
        for path in self._files():
            try:
                conversation = self._read(path)
            except InputError:
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
        return summaries

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return iter(())
        return (p for p in self.root.glob("*.json") if p.is_file())

    def _read(self, path: Path) -> Conversation:
        try:
            return conversation_from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"Could not read the saved conversation {path}: {exc}",
                hint="The file may be damaged; move it out of the way to start afresh.",
            ) from exc


# -- JSON -------------------------------------------------------------------------------------


def _usage_to_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "source": usage.source.value,
    }


def _usage_from_json(data: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=data.get("input_tokens"),
        output_tokens=data.get("output_tokens"),
        cached_input_tokens=data.get("cached_input_tokens"),
        source=CountSource(data.get("source", CountSource.UNKNOWN.value)),
    )


def turn_to_json(turn: Turn) -> dict[str, Any]:
    return {
        "user": turn.user,
        "reply": turn.reply,
        "model": turn.model,
        "status": turn.status,
        "finish_reason": turn.finish_reason,
        "usage": _usage_to_json(turn.usage),
        "cost_usd": turn.cost_usd,
        "error": turn.error,
        "at": turn.at.isoformat(),
    }


def conversation_to_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "id": conversation.id,
        "model": conversation.model,
        "system": conversation.system,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "turns": [turn_to_json(t) for t in conversation.turns],
    }


def conversation_from_json(data: dict[str, Any]) -> Conversation:
    turns = [
        Turn(
            user=t["user"],
            reply=t["reply"],
            model=t.get("model", data["model"]),
            status=t.get("status", STATUS_OK),
            finish_reason=t.get("finish_reason"),
            usage=_usage_from_json(t.get("usage") or {}),
            cost_usd=t.get("cost_usd"),
            error=t.get("error"),
            at=datetime.fromisoformat(t["at"]) if t.get("at") else now(),
        )
        for t in data.get("turns", [])
    ]
    return Conversation(
        id=str(data["id"]),
        model=str(data["model"]),
        system=data.get("system"),
        turns=turns,
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
    )


# -- Export -----------------------------------------------------------------------------------


def to_markdown(conversation: Conversation) -> str:
    """A readable transcript: a heading per speaker, interrupted and failed replies labelled."""
    lines = [
        f"# Conversation {conversation.id}",
        "",
        f"- Model: {conversation.model}",
        f"- Started: {conversation.created_at.astimezone():%Y-%m-%d %H:%M}",
        f"- Turns: {len(conversation.turns)}",
        "",
    ]
    if conversation.system:
        lines += ["## System", "", conversation.system, ""]
    for turn in conversation.turns:
        lines += ["## User", "", turn.user, ""]
        heading = "## Assistant" + (f" ({turn.model})" if turn.model != conversation.model else "")
        lines += [heading, ""]
        if turn.reply:
            lines += [turn.reply, ""]
        if turn.status == STATUS_INTERRUPTED:
            lines += ["*(interrupted)*", ""]
        elif turn.status == STATUS_ERROR:
            lines += [f"*(failed: {turn.error or 'unknown error'})*", ""]
    return "\n".join(lines).rstrip() + "\n"


def export(conversation: Conversation, path: Path) -> str:
    """Write the conversation to ``path``: JSON for ``.json``, Markdown otherwise. Returns the format."""
    if path.suffix.lower() == ".json":
        text, kind = json.dumps(conversation_to_json(conversation), indent=2, ensure_ascii=False) + "\n", "json"
    else:
        text, kind = to_markdown(conversation), "markdown"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Could not write {path}: {exc.strerror or exc}", hint="Pick another file name.") from exc
    return kind
