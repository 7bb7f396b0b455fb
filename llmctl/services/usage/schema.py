"""The ledger's schema, one migration per version (``PRAGMA user_version``), and its failures.

``MIGRATIONS[n]`` takes a ledger from version ``n`` to ``n + 1``. Append a new entry to
change the schema; never edit a released one: old ledgers replay them in order.

A call is a :class:`LedgerRecord` (the ``calls`` table's columns); the rollup's measures are
the fields of :class:`Totals`, each declaring how one call adds to it (a new measure: a field
there and a migration adding its column).

:class:`LedgerError` carries the cause of a failure (corrupt file, schema too new,
permissions, full disk, locked), read from SQLite's result code, so the hint fits it.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from llmctl.domain import RunStatus

_V1 = """
CREATE TABLE calls (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    command TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    token_source TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    total_tokens INTEGER,
    cached_input_tokens INTEGER,
    cost_usd REAL,
    price_input_per_mtok REAL,
    price_output_per_mtok REAL,
    price_source TEXT,
    first_token_s REAL,
    total_s REAL,
    error TEXT,
    conversation_id TEXT,
    prompt_text TEXT,
    response_text TEXT
);
CREATE INDEX calls_ts ON calls (ts);
CREATE INDEX calls_conversation ON calls (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE TABLE usage_rollup (
    period TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    command TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    input_calls INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    output_calls INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL,
    total_calls INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    cost_calls INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    interrupted INTEGER NOT NULL,
    PRIMARY KEY (period, bucket, command, provider, model)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class LedgerRecord:
    """One call as the ledger keeps it. ``None`` is unknown, never 0."""

    ts: float  # unix time (UTC) when the call started
    command: str  # generate, chat, ...
    provider: str
    model: str
    status: str  # a RunStatus value
    token_source: str  # provider | exact | estimate | unknown | not_applicable (never reached a model)
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    cost_usd: float | None = None
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    price_source: str | None = None  # config | genai-prices | local
    first_token_s: float | None = None
    total_s: float | None = None
    error: str | None = None
    conversation_id: str | None = None
    prompt_text: str | None = None  # only with [usage] store_text = true
    response_text: str | None = None  # only with [usage] store_text = true
    id: int | None = None

    @property
    def time_utc(self) -> datetime:
        return datetime.fromtimestamp(self.ts, tz=UTC)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LedgerRecord) if f.name != "id")

NOT_APPLICABLE = "not_applicable"  # token source of a call that never reached a model

_T = TypeVar("_T", int, float)


def _measure(zero: _T, row: Callable[[LedgerRecord], float], sql: str, *, since: int = 1) -> _T:
    """A rollup measure: a field of Totals, a column of ``usage_rollup`` (from schema version ``since``).

    ``row`` is one call's contribution to it (added to the rollup when the call is written); ``sql``
    is the same over the ``calls`` table (for the partial hours a report reads raw).
    """
    return field(default=zero, metadata={"row": row, "sql": sql, "since": since})


@dataclass
class Totals:
    """Sums over a set of calls, with how many calls each sum covers.

    Each field is one measure of the rollup, in table order; how a call adds to it is declared here
    once, and the rollup upsert, its SQL over raw calls and the report's sums all follow from it.
    """

    calls: int = _measure(0, lambda r: 1, "COUNT(*)")
    input_tokens: int = _measure(0, lambda r: r.input_tokens or 0, "SUM(COALESCE(input_tokens, 0))")
    input_calls: int = _measure(0, lambda r: r.input_tokens is not None, "COUNT(input_tokens)")
    output_tokens: int = _measure(0, lambda r: r.output_tokens or 0, "SUM(COALESCE(output_tokens, 0))")
    output_calls: int = _measure(0, lambda r: r.output_tokens is not None, "COUNT(output_tokens)")
    total_tokens: int = _measure(0, lambda r: r.total_tokens or 0, "SUM(COALESCE(total_tokens, 0))")
    total_calls: int = _measure(0, lambda r: r.total_tokens is not None, "COUNT(total_tokens)")
    cached_input_tokens: int = _measure(
        0, lambda r: r.cached_input_tokens or 0, "SUM(COALESCE(cached_input_tokens, 0))"
    )
    cost_usd: float = _measure(0.0, lambda r: r.cost_usd or 0.0, "SUM(COALESCE(cost_usd, 0))")
    cost_calls: int = _measure(0, lambda r: r.cost_usd is not None, "COUNT(cost_usd)")
    errors: int = _measure(0, lambda r: r.status == RunStatus.ERROR, f"SUM(status = '{RunStatus.ERROR}')")
    interrupted: int = _measure(
        0, lambda r: r.status == RunStatus.INTERRUPTED, f"SUM(status = '{RunStatus.INTERRUPTED}')"
    )
    # calls that never reached a model: no tokens used, none unknown
    unreached: int = _measure(
        0, lambda r: r.token_source == NOT_APPLICABLE, f"SUM(token_source = '{NOT_APPLICABLE}')", since=2
    )

    def add(self, values: Sequence[Any]) -> None:
        for name, value in zip((f.name for f in fields(self)), values, strict=True):
            setattr(self, name, getattr(self, name) + (value or 0))

    @property
    def reached(self) -> int:
        """Calls that reached a model (only they can have counts, known or not)."""
        return self.calls - self.unreached

    @property
    def unknown_input(self) -> int:
        return max(0, self.reached - self.input_calls)

    @property
    def unknown_output(self) -> int:
        return max(0, self.reached - self.output_calls)

    @property
    def unknown_tokens(self) -> int:
        """Calls whose total token count is unknown (so the token sums are lower bounds)."""
        return max(0, self.reached - self.total_calls)

    @property
    def unknown_cost(self) -> int:
        """Calls whose cost is unknown (so the cost sum is a lower bound)."""
        return max(0, self.reached - self.cost_calls)


# Calls that never reached a model (token source "not_applicable"): their counts are not unknown.
_V2 = "ALTER TABLE usage_rollup ADD COLUMN unreached INTEGER NOT NULL DEFAULT 0"

# Full-text search over the stored prompts and answers (`llmctl logs -q`): an FTS5 index kept
# in step with the calls table by triggers, filled with what is already stored.
_V3 = """
CREATE VIRTUAL TABLE calls_text USING fts5(prompt_text, response_text, content='calls', content_rowid='id');
INSERT INTO calls_text (rowid, prompt_text, response_text)
    SELECT id, prompt_text, response_text FROM calls WHERE prompt_text IS NOT NULL OR response_text IS NOT NULL;
CREATE TRIGGER calls_text_insert AFTER INSERT ON calls BEGIN
    INSERT INTO calls_text (rowid, prompt_text, response_text) VALUES (new.id, new.prompt_text, new.response_text);
END;
CREATE TRIGGER calls_text_delete AFTER DELETE ON calls BEGIN
    INSERT INTO calls_text (calls_text, rowid, prompt_text, response_text)
    VALUES ('delete', old.id, old.prompt_text, old.response_text);
END;
"""

# MIGRATIONS[n] upgrades a ledger at user_version n to n + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


_HINTS = {
    "corrupt": "The file is damaged or not a ledger: move it aside (llmctl starts a new one) or restore a backup.",
    "too_new": "A newer llmctl wrote it: upgrade llmctl (pip install -U llmctl).",
    "permissions": "Check that you may read and write the file and its folder (or set LLMCTL_HOME elsewhere).",
    "full": "The disk is full: free some space.",
    "locked": "Another llmctl holds it for writing; try again when it is done.",
    "unknown": "Set LLMCTL_DEBUG=1 for details.",
}

# SQLite's primary result codes (the part before any '_' extension), and the cause each means.
_CAUSES = {
    "SQLITE_CORRUPT": "corrupt",
    "SQLITE_NOTADB": "corrupt",
    "SQLITE_FORMAT": "corrupt",
    "SQLITE_READONLY": "permissions",
    "SQLITE_CANTOPEN": "permissions",
    "SQLITE_PERM": "permissions",
    "SQLITE_AUTH": "permissions",
    "SQLITE_FULL": "full",
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
}


class LedgerError(Exception):
    """The ledger cannot be opened, read or written; ``cause`` says why, ``hint`` how to fix it."""

    def __init__(self, message: str, cause: str = "unknown") -> None:
        super().__init__(message)
        self.cause = cause if cause in _HINTS else "unknown"

    @property
    def hint(self) -> str:
        return _HINTS[self.cause]


def cause_of(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return "permissions"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "full"
    name = getattr(exc, "sqlite_errorname", None) or ""
    for code, cause in _CAUSES.items():
        if name == code or name.startswith(code + "_"):
            return cause
    text = str(exc).lower()
    if "not a database" in text or "malformed" in text:
        return "corrupt"
    if "disk is full" in text or "disk full" in text:
        return "full"
    return "unknown"


def statements(script: str) -> list[str]:
    """The SQL statements of ``script``; a trigger's body (``;`` inside BEGIN ... END) stays whole."""
    import sqlite3

    found, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                found.append(pending.strip())
            pending = ""
    return found
