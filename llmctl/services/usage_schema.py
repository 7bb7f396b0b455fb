"""The ledger's schema, one migration per version (``PRAGMA user_version``).

``MIGRATIONS[n]`` takes a ledger from version ``n`` to ``n + 1``. Append a new entry to
change the schema; never edit a released one: old ledgers replay them in order.
"""

from __future__ import annotations

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

# MIGRATIONS[n] upgrades a ledger at user_version n to n + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)
