"""The ledger's measures are declared once (the fields of Totals): the rollup, the raw edges and the sums agree.

Every measure is checked, not a few: a report over whole months reads only rollup rows, one inside
an hour reads only raw calls; both must equal the obvious sums over the rows written.
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llmctl.domain import RunStatus
from llmctl.services.usage.ledger import NOT_APPLICABLE, LedgerRecord, Totals, UsageLedger, UsageQuery

HOUR = datetime(2025, 3, 14, 15, tzinfo=UTC).timestamp()
ROLLUP_KEY_COLUMNS = ("period", "bucket", "command", "provider", "model")


def _rows() -> list[LedgerRecord]:
    """One call for each mix of known and unknown counts, status and token source (all within one hour)."""
    rows = []
    combos = itertools.product((None, 7), (None, 3), (None, 0.25), tuple(RunStatus), ("provider", NOT_APPLICABLE))
    for index, (tokens, cached, cost, status, source) in enumerate(combos):
        rows.append(
            LedgerRecord(
                ts=HOUR + 60 + index,
                command="generate",
                provider="openai",
                model="m",
                status=status.value,
                token_source=source,
                input_tokens=tokens,
                output_tokens=None if tokens is None else tokens + 1,
                total_tokens=None if tokens is None else 2 * tokens + 1,
                cached_input_tokens=cached,
                cost_usd=cost,
            )
        )
    return rows


def _expected(rows: list[LedgerRecord]) -> dict[str, float]:
    """The sums, the slow obvious way (no use of the measures' declarations)."""
    known = [r for r in rows if r.input_tokens is not None]
    return {
        "calls": len(rows),
        "input_tokens": sum(r.input_tokens or 0 for r in rows),
        "input_calls": len(known),
        "output_tokens": sum(r.output_tokens or 0 for r in rows),
        "output_calls": sum(r.output_tokens is not None for r in rows),
        "total_tokens": sum(r.total_tokens or 0 for r in rows),
        "total_calls": sum(r.total_tokens is not None for r in rows),
        "cached_input_tokens": sum(r.cached_input_tokens or 0 for r in rows),
        "cost_usd": sum(r.cost_usd or 0.0 for r in rows),
        "cost_calls": sum(r.cost_usd is not None for r in rows),
        "errors": sum(r.status == "error" for r in rows),
        "interrupted": sum(r.status == "interrupted" for r in rows),
        "unreached": sum(r.token_source == "not_applicable" for r in rows),
    }


@pytest.mark.parametrize(
    ("reads", "query"),
    [
        ("rollup rows only", UsageQuery()),
        ("whole months", UsageQuery(since=datetime(2025, 1, 1, tzinfo=UTC).timestamp())),
        ("raw calls only", UsageQuery(since=HOUR + 30, until=HOUR + 3000)),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_measure_sums_the_same_from_the_rollup_and_from_raw_calls(
    tmp_path: Path, reads: str, query: UsageQuery
) -> None:
    rows = _rows()
    with UsageLedger(tmp_path / "l.sqlite3") as ledger:
        ledger.record_many(rows)
        totals = ledger.summarize(query).totals
    expected = _expected(rows)
    assert set(expected) == {f.name for f in fields(Totals)}  # a new measure gets a line above
    assert all(expected[name] > 0 for name in expected), "every measure is exercised"
    assert asdict(totals) == pytest.approx(expected)


def test_the_rollup_table_has_one_column_per_measure_in_order(tmp_path: Path) -> None:
    with UsageLedger(tmp_path / "l.sqlite3") as ledger:
        ledger.count()
    conn = sqlite3.connect(tmp_path / "l.sqlite3")
    columns = [row[1] for row in conn.execute("PRAGMA table_info(usage_rollup)")]
    conn.close()
    assert tuple(columns) == (*ROLLUP_KEY_COLUMNS, *(f.name for f in fields(Totals)))


@pytest.mark.parametrize(
    ("status", "errors", "interrupted"),
    [(RunStatus.OK, 0, 0), (RunStatus.ERROR, 1, 0), (RunStatus.INTERRUPTED, 0, 1)],
)
def test_each_run_status_is_counted_under_its_measure(
    tmp_path: Path, status: RunStatus, errors: int, interrupted: int
) -> None:
    row = LedgerRecord(ts=HOUR, command="chat", provider="p", model="m", status=status, token_source="provider")
    with UsageLedger(tmp_path / "l.sqlite3") as ledger:
        ledger.record(row)
        rolled = ledger.summarize().totals
        raw = ledger.summarize(UsageQuery(since=HOUR - 1, until=HOUR + 1)).totals
    assert (rolled.errors, rolled.interrupted) == (raw.errors, raw.interrupted) == (errors, interrupted)
