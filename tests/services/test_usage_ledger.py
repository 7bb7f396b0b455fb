"""The SQLite usage ledger: schema, migrations, summaries that match the raw rows, concurrency."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmctl.services.usage import ledger as usage_ledger
from llmctl.services.usage.ledger import (
    SCHEMA_VERSION,
    LedgerError,
    LedgerRecord,
    UsageLedger,
    UsageQuery,
    ledger_path,
)
from llmctl.services.usage.rollup import RawRange, bucket_start, cover, next_bucket, utc_day


def record(ts: float, **overrides: object) -> LedgerRecord:
    values: dict[str, object] = {
        "ts": ts,
        "command": "generate",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "ok",
        "token_source": "provider",
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "cost_usd": 0.001,
    }
    values.update(overrides)
    return LedgerRecord(**values)  # type: ignore[arg-type]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_ledger_lives_under_llmctl_home(isolated_home: Path) -> None:
    assert ledger_path() == isolated_home / "usage.sqlite3"


def test_a_row_comes_back_with_every_field_and_unknowns_stay_none(tmp_path: Path) -> None:
    with UsageLedger(tmp_path / "l.sqlite3") as ledger:
        written = ledger.record(
            record(
                ts("2025-03-01T10:00:00"),
                input_tokens=None,
                total_tokens=None,
                cost_usd=None,
                token_source="unknown",
                cached_input_tokens=3,
                status="error",
                error="boom",
                conversation_id="c1",
                first_token_s=None,
                total_s=1.5,
            )
        )
        rows = list(ledger.records())
    assert written.id == 1
    assert rows == [written]
    assert rows[0].input_tokens is None and rows[0].cost_usd is None and rows[0].first_token_s is None
    assert rows[0].time_utc == datetime(2025, 3, 1, 10, tzinfo=UTC)


def test_schema_is_versioned_in_wal_mode_with_indexes(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with UsageLedger(path) as ledger:
        ledger.record(record(1.0))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "calls_ts" in indexes
    plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM calls WHERE ts >= 5 AND ts < 9"))
    assert "calls_ts" in plan


def test_a_later_migration_upgrades_an_existing_ledger_and_keeps_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "l.sqlite3"
    with UsageLedger(path) as ledger:
        ledger.record(record(ts("2025-01-01T00:00:00")))
    monkeypatch.setattr(
        usage_ledger, "MIGRATIONS", (*usage_ledger.MIGRATIONS, "ALTER TABLE calls ADD COLUMN note TEXT")
    )
    monkeypatch.setattr(usage_ledger, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with UsageLedger(path) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION + 1
        assert ledger.count() == 1
        assert ledger.summarize().totals.calls == 1
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(calls)")]
    assert "note" in columns


def test_a_ledger_from_a_newer_llmctl_is_refused_not_damaged(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(LedgerError, match="newer"), UsageLedger(path) as ledger:
        ledger.record(record(1.0))


def test_a_file_that_is_not_a_database_is_a_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError), UsageLedger(path) as ledger:
        ledger.record(record(1.0))


def test_a_locked_ledger_is_a_ledger_error_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with UsageLedger(path) as ledger:
        ledger.record(record(1.0))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LedgerError, match="locked"), UsageLedger(path, timeout=0.1) as ledger:
            ledger.record(record(2.0))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with UsageLedger(path) as ledger:
        assert ledger.count() == 1


# -- summaries ---------------------------------------------------------------------------------


def naive(rows: list[LedgerRecord], query: UsageQuery, by: str) -> dict[str, tuple[int, int, int, int, float, int]]:
    """What a report must say, computed the slow obvious way."""
    out: dict[str, list[float]] = {}
    for r in rows:
        if query.since is not None and r.ts < query.since:
            continue
        if query.until is not None and r.ts >= query.until:
            continue
        if any(getattr(query, f) is not None and getattr(query, f) != getattr(r, f) for f in ("model", "provider")):
            continue
        key = utc_day(r.ts) if by == "day" else f"{r.provider}/{r.model}" if by == "model" else getattr(r, by)
        sums = out.setdefault(key, [0, 0, 0, 0, 0.0, 0])
        sums[0] += 1
        sums[1] += r.input_tokens or 0
        sums[2] += r.input_tokens is not None
        sums[3] += r.output_tokens or 0
        sums[4] += r.cost_usd or 0.0
        sums[5] += r.cost_usd is not None
    return {k: (int(v[0]), int(v[1]), int(v[2]), int(v[3]), round(v[4], 9), int(v[5])) for k, v in out.items()}


def summary(ledger: UsageLedger, query: UsageQuery, by: str) -> dict[str, tuple[int, int, int, int, float, int]]:
    report = ledger.summarize(query, by=by)  # type: ignore[arg-type]
    return {
        k: (t.calls, t.input_tokens, t.input_calls, t.output_tokens, round(t.cost_usd, 9), t.cost_calls)
        for k, t in report.groups.items()
    }


def test_summaries_match_the_raw_rows_for_any_range_grouping_and_filter(tmp_path: Path) -> None:
    rng = random.Random(5)
    start, end = ts("2024-11-20T00:00:00"), ts("2025-03-10T00:00:00")
    rows = [
        record(
            rng.uniform(start, end),
            model=rng.choice(["a", "b", "c"]),
            provider=rng.choice(["openai", "anthropic"]),
            command=rng.choice(["generate", "chat"]),
            input_tokens=rng.choice([None, rng.randint(1, 100)]),
            output_tokens=rng.randint(0, 50),
            cost_usd=rng.choice([None, rng.random() / 100]),
        )
        for _ in range(3000)
    ]
    with UsageLedger(tmp_path / "l.sqlite3") as ledger:
        ledger.record_many(rows[:1000])
        for r in rows[1000:1100]:
            ledger.record(r)
        ledger.record_many(rows[1100:])
        ranges = [(None, None), (None, ts("2025-01-15T13:30:00")), (ts("2024-12-31T23:59:59.5"), None)]
        ranges += [tuple(sorted((rng.uniform(start, end), rng.uniform(start, end)))) for _ in range(12)]
        ranges += [
            (ts("2025-02-01T00:00:00"), ts("2025-03-01T00:00:00")),
            (ts("2025-01-05T10:10:00"), ts("2025-01-05T10:50:00")),
        ]
        for since, until in ranges:
            for by in ("model", "provider", "day", "command"):
                for filters in ({}, {"model": "a"}, {"provider": "anthropic", "model": "b"}):
                    query = UsageQuery(since=since, until=until, **filters)  # type: ignore[arg-type]
                    assert summary(ledger, query, by) == naive(rows, query, by), (since, until, by, filters)


def test_totals_keep_count_of_the_calls_whose_numbers_are_unknown(tmp_path: Path) -> None:
    with UsageLedger(tmp_path / "l.sqlite3") as ledger:
        ledger.record_many(
            [
                record(100.0),
                record(200.0, input_tokens=None, total_tokens=None, cost_usd=None, status="interrupted"),
                record(300.0, output_tokens=None, total_tokens=None, status="error"),
            ]
        )
        totals = ledger.summarize().totals
    assert (totals.calls, totals.input_tokens, totals.input_calls) == (3, 20, 2)
    assert (totals.output_tokens, totals.output_calls, totals.unknown_tokens) == (10, 2, 2)
    assert totals.cost_calls == 2 and totals.unknown_cost == 1
    assert (totals.errors, totals.interrupted) == (1, 1)


def test_a_whole_year_report_reads_month_rows_not_every_call(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    rows = [record(ts("2024-01-01T00:00:00") + i * 3000.0) for i in range(10_000)]  # ~347 days
    with UsageLedger(path) as ledger:
        ledger.record_many(rows)
    buckets, raws = cover(None, None)
    assert [b.period for b in buckets] == ["month"] and raws == []
    conn = sqlite3.connect(path)
    months = conn.execute("SELECT COUNT(*) FROM usage_rollup WHERE period = 'month'").fetchone()[0]
    assert months == 12


# -- time buckets -------------------------------------------------------------------------------


def test_buckets_are_utc_hours_days_and_calendar_months() -> None:
    moment = ts("2024-02-29T13:45:10")
    assert bucket_start("hour", moment) == ts("2024-02-29T13:00:00")
    assert bucket_start("day", moment) == ts("2024-02-29T00:00:00")
    assert bucket_start("month", moment) == ts("2024-02-01T00:00:00")
    assert next_bucket("month", int(ts("2024-12-01T00:00:00"))) == ts("2025-01-01T00:00:00")


def test_a_range_is_covered_by_months_then_days_then_hours_then_raw_edges() -> None:
    since, until = ts("2024-01-30T22:30:00"), ts("2024-04-02T05:15:00")
    buckets, raws = cover(since, until)
    assert [(b.period, b.low, b.high) for b in buckets] == [
        ("month", ts("2024-02-01T00:00:00"), ts("2024-04-01T00:00:00")),
        ("day", ts("2024-01-31T00:00:00"), ts("2024-02-01T00:00:00")),
        ("hour", ts("2024-01-30T23:00:00"), ts("2024-01-31T00:00:00")),
        ("day", ts("2024-04-01T00:00:00"), ts("2024-04-02T00:00:00")),
        ("hour", ts("2024-04-02T00:00:00"), ts("2024-04-02T05:00:00")),
    ]
    assert raws == [RawRange(since, ts("2024-01-30T23:00:00")), RawRange(ts("2024-04-02T05:00:00"), until)]


# -- many writers at once -----------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from llmctl.config import Settings
    from llmctl.domain import Completion, CountSource, FinishReason, Usage
    from llmctl.providers.registry import resolve
    from llmctl.services.usage.accounting import record_call
    from llmctl.services.generation import GenerationResult, RunStatus, Timing

    worker, rows = int(sys.argv[1]), int(sys.argv[2])
    settings = Settings()
    resolved = resolve("openai/gpt-4o-mini", settings)
    for i in range(rows):
        usage = Usage(100 + i, 10, CountSource.PROVIDER)
        result = GenerationResult(
            Completion("hi", FinishReason.STOP, usage), "gpt-4o-mini", "openai", Timing(0.1, 0.2), RunStatus.OK
        )
        accounting = record_call(result, resolved, settings=settings, command=f"worker-{worker}")
        if not accounting.saved:
            sys.exit(f"not saved: {accounting.warning}")
    """
)


def test_eight_processes_writing_at_once_lose_no_row(isolated_home: Path) -> None:
    rows_each = 25
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    workers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(n), str(rows_each)], env=env, stderr=subprocess.PIPE)
        for n in range(8)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()
    with UsageLedger() as ledger:
        report = ledger.summarize(by="command")
        assert ledger.count() == 8 * rows_each
    assert report.totals.calls == 8 * rows_each
    assert {k: t.calls for k, t in report.groups.items()} == {f"worker-{n}": rows_each for n in range(8)}
    assert report.totals.cost_calls == 8 * rows_each
