"""``llmctl usage``: the table, --json, --csv, grouping, time ranges and filters."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from tests.conftest import CliResult

Run = Callable[..., CliResult]
NOW = datetime.now(UTC)


def call(hours_ago: float, model: str, provider: str, command: str = "generate", **extra: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "input_tokens": 100,
        "output_tokens": 20,
        "total_tokens": 120,
        "cost_usd": 0.01,
        "status": "ok",
        "token_source": "provider",
    }
    values.update(extra)
    return LedgerRecord(
        ts=(NOW - timedelta(hours=hours_ago)).timestamp(), command=command, provider=provider, model=model, **values
    )


@pytest.fixture
def ledger() -> list[LedgerRecord]:
    rows = [
        call(1, "gpt-4o-mini", "openai"),
        call(2, "gpt-4o-mini", "openai", "chat"),
        call(30, "gpt-4o-mini", "openai", cost_usd=0.02),
        call(3, "claude", "anthropic", "chat", cost_usd=0.5),
        call(24 * 10, "claude", "anthropic", cost_usd=1.0),
        call(5, "local", "hf", cost_usd=0.0, token_source="exact"),
        call(6, "mystery", "my-vllm", output_tokens=None, total_tokens=None, cost_usd=None, status="error"),
    ]
    with UsageLedger() as target:
        target.record_many(rows)
    return rows


def json_report(run_llmctl: Run, *args: str) -> dict[str, Any]:
    result = run_llmctl("usage", "--json", *args)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_json_totals_and_groups_by_model(run_llmctl: Run, ledger: list[LedgerRecord]) -> None:
    data = json_report(run_llmctl)
    totals = data["totals"]
    assert {k: totals[k] for k in ("calls", "input_tokens", "output_tokens", "total_tokens")} == {
        "calls": 7,
        "input_tokens": 700,
        "output_tokens": 120,
        "total_tokens": 720,
    }
    assert totals["cost_usd"] == pytest.approx(1.54)
    assert (totals["unknown_cost_calls"], totals["unknown_tokens_calls"], totals["errors"]) == (1, 1, 1)
    groups = {g["model"]: g for g in data["groups"]}
    assert set(groups) == {"openai/gpt-4o-mini", "anthropic/claude", "hf/local", "my-vllm/mystery"}
    gpt = groups["openai/gpt-4o-mini"]
    assert gpt["calls"] == 3 and gpt["cost_usd"] == pytest.approx(0.04)
    assert groups["my-vllm/mystery"]["cost_usd"] is None and groups["my-vllm/mystery"]["output_tokens"] is None
    assert groups["hf/local"]["cost_usd"] == 0
    assert data["groups"][0]["model"] == "anthropic/claude"  # most expensive first


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("provider", {"openai": 3, "anthropic": 2, "hf": 1, "my-vllm": 1}),
        ("command", {"generate": 5, "chat": 2}),
    ],
)
def test_grouping(run_llmctl: Run, ledger: list[LedgerRecord], by: str, expected: dict[str, int]) -> None:
    data = json_report(run_llmctl, "--by", by)
    assert {g[by]: g["calls"] for g in data["groups"]} == expected


def test_grouping_by_day_is_in_date_order(run_llmctl: Run, ledger: list[LedgerRecord]) -> None:
    days = [g["day"] for g in json_report(run_llmctl, "--by", "day")["groups"]]
    assert days == sorted(days)
    expected = {(NOW - timedelta(hours=h)).date().isoformat() for h in (1, 2, 30, 3, 240, 5, 6)}
    assert set(days) == expected


def test_since_an_age_and_filters(run_llmctl: Run, ledger: list[LedgerRecord]) -> None:
    assert json_report(run_llmctl, "--since", "24h")["totals"]["calls"] == 5
    assert json_report(run_llmctl, "--since", "7d")["totals"]["calls"] == 6
    assert json_report(run_llmctl, "--since", "24h", "--provider", "openai")["totals"]["calls"] == 2
    filtered = json_report(run_llmctl, "--model", "claude")
    assert filtered["totals"]["calls"] == 2 and filtered["totals"]["cost_usd"] == pytest.approx(1.5)
    assert filtered["filters"]["model"] == "claude"


def test_until_a_date_includes_that_whole_day(run_llmctl: Run, ledger: list[LedgerRecord]) -> None:
    ten_days_ago = (NOW - timedelta(hours=240)).astimezone().date().isoformat()
    data = json_report(run_llmctl, "--until", ten_days_ago)
    assert data["totals"]["calls"] == 1 and data["groups"][0]["model"] == "anthropic/claude"


def test_the_table_marks_sums_that_leave_unknowns_out(run_llmctl: Run, ledger: list[LedgerRecord]) -> None:
    result = run_llmctl("usage")
    assert result.exit_code == 0, result.stderr
    assert "gpt-4o-mini" in result.stdout and "total" in result.stdout
    mystery = next(line for line in result.stdout.splitlines() if "mystery" in line).split("\t")
    assert mystery.count("unknown") == 3  # output, total and cost: unknown, never 0 (piped, so spelled out)
    total = next(line for line in result.stdout.splitlines() if "total" in line and "≥" in line)
    assert "≥$1.54" in total
    assert "1 call of unknown cost" in result.stderr


def test_csv_writes_the_raw_rows(run_llmctl: Run, ledger: list[LedgerRecord]) -> None:
    result = run_llmctl("usage", "--csv", "--provider", "openai")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3
    assert {"time_utc", "model", "input_tokens", "cost_usd", "status", "price_source"} <= set(rows[0])
    assert rows[0]["time_utc"].endswith("Z")
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)


def test_unknown_cells_are_empty_in_csv(run_llmctl: Run, ledger: list[LedgerRecord]) -> None:
    (row,) = csv.DictReader(io.StringIO(run_llmctl("usage", "--csv", "--model", "mystery").stdout))
    assert row["output_tokens"] == "" and row["cost_usd"] == "" and row["status"] == "error"


def test_an_empty_ledger(run_llmctl: Run, isolated_home: Path) -> None:
    result = run_llmctl("usage")
    assert result.exit_code == 0 and "No calls recorded yet" in result.stderr
    data = json_report(run_llmctl)
    assert data["totals"]["calls"] == 0 and data["totals"]["cost_usd"] is None and data["groups"] == []
    assert not (isolated_home / "usage.sqlite3").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "week"), "use model, provider, day, command or client"),
        (("--since", "last tuesday"), "Cannot read the time"),
        (("--since", "1d", "--until", "2d"), "--since must be before --until"),
        (("--json", "--csv"), "cannot be used together"),
    ],
)
def test_bad_arguments_are_usage_errors(run_llmctl: Run, args: tuple[str, ...], message: str) -> None:
    result = run_llmctl("usage", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_usage_imports_no_heavy_library(ledger: list[LedgerRecord]) -> None:
    heavy = ("torch", "transformers", "openai", "anthropic", "accelerate", "bitsandbytes", "huggingface_hub")
    script = (
        "import sys; from llmctl.cli.app import main; sys.argv = ['llmctl', 'usage', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', [m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"calls": 7' in done.stdout
    assert "LOADED []" in done.stdout
