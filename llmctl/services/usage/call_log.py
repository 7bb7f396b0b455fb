"""``llmctl logs``: past calls with their prompts and answers, newest first, searchable.

Text is there when ``[usage] store_text`` was on for the call; full-text search goes
through the ledger's FTS5 index (``calls_text``), falling back to a plain substring match
on a ledger from before the index, read without upgrading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmctl.errors import UsageError
from llmctl.services.usage.ledger import COLUMNS, LedgerRecord, UsageLedger

DEFAULT_COUNT = 3


@dataclass(frozen=True)
class LogQuery:
    count: int | None = DEFAULT_COUNT  # None: all of them
    models: tuple[str, ...] = ()  # a call matches MODEL-ID or PROVIDER/MODEL-ID
    since: float | None = None
    conversation: str | None = None  # an id or a unique start of one
    search: str | None = None  # words that must all appear in the prompt or the answer


def fts_phrase(text: str) -> str:
    """The user's words as an FTS5 query: each word quoted (no FTS syntax leaks in), all required."""
    words = text.split()
    if not words:
        raise UsageError("-q needs some text to search for.")
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def recent_calls(query: LogQuery, ledger: UsageLedger | None = None) -> list[LedgerRecord]:
    """The calls ``query`` selects, newest first."""
    ledger = ledger if ledger is not None else UsageLedger(read_only=True)
    if not ledger.exists():
        return []
    where: list[str] = []
    params: list[Any] = []
    if query.models:
        marks = ", ".join("?" for _ in query.models)
        where.append(f"(model IN ({marks}) OR provider || '/' || model IN ({marks}))")
        params += [*query.models, *query.models]
    if query.since is not None:
        where.append("ts >= ?")
        params.append(query.since)
    if query.conversation:
        where.append("conversation_id LIKE ? ESCAPE '\\'")
        params.append(query.conversation.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if query.search is not None:
        if _has_text_index(ledger):
            where.append("id IN (SELECT rowid FROM calls_text WHERE calls_text MATCH ?)")
            params.append(fts_phrase(query.search))
        else:
            for word in query.search.split():
                where.append("(instr(prompt_text, ?) > 0 OR instr(response_text, ?) > 0)")
                params += [word, word]
    sql = f"SELECT id, {ledger.selected_columns()} FROM calls"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, id DESC"
    if query.count is not None:
        sql += " LIMIT ?"
        params.append(query.count)
    rows = ledger.query(sql, params)
    return [LedgerRecord(id=row[0], **dict(zip(COLUMNS, row[1:], strict=True))) for row in rows]


def _has_text_index(ledger: UsageLedger) -> bool:
    return bool(ledger.query("SELECT 1 FROM sqlite_master WHERE name = 'calls_text'"))
