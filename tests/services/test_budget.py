"""Budgets: refuse a call once spent, warn past 80 %, --ignore-budget overrides once."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from llmctl.config import Settings
from llmctl.services.usage.budget import BudgetExceededError, check_budget, period_starts
from llmctl.services.usage.ledger import LedgerRecord, UsageLedger

NOW = datetime(2025, 6, 15, 14, 30).astimezone()


def settings(**budget: Any) -> Settings:
    return Settings.model_validate({"budget": budget})


def spend(usd: float, *, provider: str = "openai", when: datetime = NOW - timedelta(hours=1), **extra: Any) -> None:
    with UsageLedger() as ledger:
        ledger.record(
            LedgerRecord(
                ts=when.timestamp(),
                command="generate",
                provider=provider,
                model="m",
                status="ok",
                token_source="provider",
                cost_usd=usd,
                **extra,
            )
        )


def check(config: Settings, reference: str = "openai/gpt-4o-mini", **kwargs: Any) -> list[str]:
    from llmctl.providers.registry import resolve

    return check_budget(config, resolve(reference, config), now=NOW, **kwargs)


def test_no_budget_no_check_and_no_ledger_created(isolated_home: Any) -> None:
    assert check(Settings()) == []
    assert not (isolated_home / "usage.sqlite3").exists()


def test_a_spent_daily_budget_refuses_the_call_naming_budget_and_spend() -> None:
    spend(3.0)
    spend(2.5)
    with pytest.raises(BudgetExceededError) as caught:
        check(settings(daily_usd=5))
    error = caught.value
    assert error.exit_code == 2
    assert "daily budget of $5.00 is spent" in error.message and "$5.50 spent today" in error.message
    assert error.hint is not None and "--ignore-budget" in error.hint and "[budget] daily_usd" in error.hint


def test_ignore_budget_lets_the_call_through_with_a_warning() -> None:
    spend(6.0)
    warnings = check(settings(daily_usd=5), ignore=True)
    assert any("Ignoring the daily budget" in w and "$6.00 of $5.00" in w for w in warnings)


def test_past_80_percent_warns_and_below_is_silent() -> None:
    spend(4.1)
    assert check(settings(daily_usd=10)) == []
    (warning,) = check(settings(daily_usd=5))
    assert "82% of the daily budget used" in warning and "$4.10 of $5.00" in warning


def test_yesterdays_spend_counts_for_the_month_not_the_day() -> None:
    spend(9.0, when=period_starts(NOW)["daily"] - timedelta(minutes=5))
    assert check(settings(daily_usd=5)) == []
    with pytest.raises(
        BudgetExceededError, match=re.escape("monthly budget of $8.00 is spent: $9.00 spent this month")
    ):
        check(settings(daily_usd=5, monthly_usd=8))


def test_last_months_spend_does_not_count() -> None:
    spend(100.0, when=period_starts(NOW)["monthly"] - timedelta(seconds=1))
    assert check(settings(daily_usd=5, monthly_usd=8)) == []


def test_a_provider_budget_counts_only_that_providers_spend() -> None:
    spend(4.0, provider="anthropic")
    spend(1.0, provider="openai")
    config = settings(providers={"anthropic": {"daily_usd": 3}})
    assert check(config, "openai/gpt-4o-mini") == []
    with pytest.raises(
        BudgetExceededError, match=re.escape("daily budget for anthropic of $3.00 is spent: $4.00 spent on")
    ):
        check(config, "anthropic/claude-3-5-haiku-latest")


def test_a_free_local_model_is_never_refused(tiny_models: dict[str, Any]) -> None:
    spend(50.0, provider="hf")
    assert check(settings(daily_usd=1), str(tiny_models["llama"])) == []


def test_calls_of_unknown_cost_are_named_not_silently_zero() -> None:
    spend(4.5)
    with UsageLedger() as ledger:
        ledger.record(
            LedgerRecord(
                ts=(NOW - timedelta(minutes=3)).timestamp(),
                command="chat",
                provider="openai",
                model="m",
                status="ok",
                token_source="unknown",
            )
        )
    warnings = check(settings(daily_usd=5))
    assert any("90% of the daily budget" in w for w in warnings)
    assert any("1 call today has no known cost and is not counted" in w for w in warnings)


def test_an_unreadable_ledger_allows_the_call_with_a_warning(isolated_home: Any) -> None:
    isolated_home.mkdir(parents=True)
    (isolated_home / "usage.sqlite3").write_bytes(b"garbage" * 200)
    (warning,) = check(settings(daily_usd=5))
    assert warning.startswith("Budget not checked")
