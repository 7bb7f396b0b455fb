"""A chat conversation: its turns, their usage totals, and its JSON form.

Reading JSON checks every field's type: a damaged or hand-edited file is a clear
ValueError (the store reports it and skips the file), never a crash later on.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmctl.domain import CountSource, Message, RunStatus, Usage

FORMAT_VERSION = 1


def now() -> datetime:
    return datetime.now(UTC)


def new_turn_id() -> str:
    return secrets.token_hex(6)


@dataclass
class Turn:
    """One exchange: what the user said and what the model answered (possibly cut short)."""

    user: str
    reply: str
    model: str
    status: RunStatus = RunStatus.OK
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    error: str | None = None
    at: datetime = field(default_factory=now)
    id: str = field(default_factory=new_turn_id)  # what two chats on one conversation merge by

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)  # a plain "ok" becomes the member; anything else is a ValueError

    @property
    def in_context(self) -> bool:
        """Whether the turn is sent back to the model: not a failed or interrupted one that produced nothing."""
        return self.status is RunStatus.OK or bool(self.reply.strip())


@dataclass
class Conversation:
    id: str
    model: str  # the reference to resume with: an alias, PROVIDER/MODEL-ID or a folder
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    # Ids of the turns the file had when this process last read or wrote it: a turn on disk that is
    # not among them was added by another process; one among them that is gone was removed here (/retry).
    saved_turn_ids: set[str] = field(default_factory=set, compare=False, repr=False)

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


def new_conversation_id() -> str:
    """Sortable by creation time, unique enough for one user: ``20250614-093012-5f3a``."""
    return f"{now().astimezone():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


# -- JSON -------------------------------------------------------------------------------------


def _usage_to_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "source": usage.source.value,
    }


def _typed(data: dict[str, Any], key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):  # no field of ours is a bool
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{key!r} should be {expected}, not {type(value).__name__}")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} should be an object, not {type(value).__name__}")
    return value


def _moment(data: dict[str, Any], key: str) -> datetime:
    """An ISO time; one without a zone (hand-written) is taken as UTC, so all compare."""
    moment = datetime.fromisoformat(_typed(data, key, str))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _usage_from_json(data: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=_typed(data, "input_tokens", int, optional=True),
        output_tokens=_typed(data, "output_tokens", int, optional=True),
        cached_input_tokens=_typed(data, "cached_input_tokens", int, optional=True),
        source=CountSource(data.get("source") or CountSource.UNKNOWN.value),
    )


def turn_to_json(turn: Turn) -> dict[str, Any]:
    return {
        "id": turn.id,
        "user": turn.user,
        "reply": turn.reply,
        "model": turn.model,
        "status": turn.status.value,
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


def _turn_from_json(value: Any, index: int, model: str) -> Turn:
    data = _object(value, f"turn {index + 1}")
    at = _moment(data, "at") if data.get("at") is not None else now()
    status = data.get("status") or RunStatus.OK
    if status not in tuple(RunStatus):
        raise ValueError(f"turn {index + 1} has status {status!r}, not one of {', '.join(RunStatus)}")
    cost = _typed(data, "cost_usd", (int, float), optional=True)
    return Turn(
        user=_typed(data, "user", str),
        reply=_typed(data, "reply", str),
        model=_typed(data, "model", str, optional=True) or model,
        status=RunStatus(status),
        finish_reason=_typed(data, "finish_reason", str, optional=True),
        usage=_usage_from_json(_object({} if data.get("usage") is None else data["usage"], "usage")),
        cost_usd=None if cost is None else float(cost),
        error=_typed(data, "error", str, optional=True),
        at=at,
        # Files written before turns had ids: the same id in every process that reads the file.
        id=_typed(data, "id", str, optional=True) or f"{index}-{at.isoformat()}",
    )


def conversation_from_json(data: Any, file_id: str | None = None) -> Conversation:
    """A conversation from its JSON; ``file_id`` (the file's name) is its id, whatever the JSON says."""
    data = _object(data, "the file")
    model = _typed(data, "model", str)
    turns = [] if data.get("turns") is None else data["turns"]
    if not isinstance(turns, list):
        raise ValueError(f"'turns' should be a list, not {type(turns).__name__}")
    return Conversation(
        id=file_id if file_id is not None else _typed(data, "id", str),
        model=model,
        system=_typed(data, "system", str, optional=True),
        turns=[_turn_from_json(turn, index, model) for index, turn in enumerate(turns)],
        created_at=_moment(data, "created_at"),
        updated_at=_moment(data, "updated_at"),
    )
