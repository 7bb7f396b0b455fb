"""bench goes through the one call path: budget before each call, every call recorded however it ends."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.domain import CountSource, Finished, FinishReason, Usage
from llmctl.errors import ProviderError
from llmctl.services.bench.run import BenchOptions, run_bench
from llmctl.services.usage.budget import BudgetExceededError
from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from tests.fakes import FakeBackend
from tests.services.test_bench import api_model


def flaky_api(fake: FakeBackend, good: int) -> FakeBackend:
    """Answers ``good`` calls, then breaks off mid-stream."""
    for _ in range(good):
        fake.enqueue("Once ", Finished(Usage(90, 4, CountSource.PROVIDER), FinishReason.LENGTH))
    fake.answer_every_call("Once ", ProviderError("the server hung up"))
    return fake


def rows() -> list[LedgerRecord]:
    with UsageLedger() as ledger:
        return list(ledger.records()) if ledger.exists() else []


def test_record_writes_every_call_and_the_one_that_broke(isolated_home: Path, fake_provider: FakeBackend) -> None:
    with pytest.raises(ProviderError):
        run_bench(
            api_model(),
            BenchOptions(runs=3, warmup=1),
            open_provider=flaky_api(fake_provider, good=2).open,
            record=True,
        )
    assert [(r.command, r.status) for r in rows()] == [("bench", "ok"), ("bench", "ok"), ("bench", "error")]
    assert rows()[-1].error == "the server hung up"


def test_without_record_nothing_is_written(isolated_home: Path, fake_provider: FakeBackend) -> None:
    report = run_bench(api_model(), BenchOptions(runs=2, warmup=0), open_provider=flaky_api(fake_provider, good=9).open)
    assert report.recorded == 0 and rows() == []


def test_a_spent_budget_refuses_a_hosted_bench_unless_ignored(isolated_home: Path, fake_provider: FakeBackend) -> None:
    with UsageLedger() as ledger:
        ledger.record(
            LedgerRecord(
                ts=time.time(),
                command="generate",
                provider="openai",
                model="gpt-4o-mini",
                status="ok",
                token_source="provider",
                cost_usd=2.0,
            )
        )
    settings = Settings.model_validate({"budget": {"daily_usd": 1.0}})
    api = flaky_api(fake_provider, good=9)
    with pytest.raises(BudgetExceededError):
        run_bench(api_model(), BenchOptions(runs=1, warmup=0), open_provider=api.open, settings=settings)
    report = run_bench(
        api_model(),
        BenchOptions(runs=1, warmup=0),
        open_provider=api.open,
        settings=settings,
        ignore_budget=True,
    )
    assert any("Ignoring the daily budget" in w for w in report.warnings)
