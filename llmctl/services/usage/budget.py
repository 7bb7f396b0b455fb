"""Spending limits: refuse a call once a budget is spent, warn past 80 %.

Budgets come from ``[budget] daily_usd`` / ``monthly_usd`` (all providers together) and
``[budget.providers.NAME] daily_usd`` / ``monthly_usd`` (one provider). "Daily" is since
local midnight, "monthly" since the first of the month, local time. Spend is what the
ledger knows: calls with an unknown cost are not counted, and the warning says how many
there were. A model that is free (local models, or a price of 0) is never refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from llmctl.config import Settings
from llmctl.domain import plural
from llmctl.errors import ExitStatus, LlmctlError
from llmctl.providers.base import ResolvedModel
from llmctl.services.usage.accounting import format_cost
from llmctl.services.usage.ledger import LedgerError, UsageLedger, UsageQuery
from llmctl.services.usage.pricing import Price, price_for

WARN_FRACTION = 0.8


class BudgetExceededError(LlmctlError):
    """A configured budget is spent; the call was not made. Exit code 2: nothing will
    change by retrying until the period rolls over, the budget is raised, or
    ``--ignore-budget`` is passed."""

    exit_code = ExitStatus.USAGE

    def __init__(self, status: BudgetStatus) -> None:
        super().__init__(
            f"The {status.name} of {format_cost(status.limit_usd)} is spent: "
            f"{format_cost(status.spent_usd)} spent {status.period_phrase}.",
            hint=f"Pass --ignore-budget to make this call anyway, or raise {status.config_key} in the config.",
        )
        self.status = status


@dataclass(frozen=True)
class BudgetStatus:
    """One budget and what has been spent against it."""

    name: str  # "daily budget", "monthly budget for openai"
    config_key: str  # "[budget] daily_usd"
    period_phrase: str  # "today", "this month"
    limit_usd: float
    spent_usd: float
    unknown_cost_calls: int

    @property
    def fraction(self) -> float:
        return 1.0 if self.limit_usd == 0 else self.spent_usd / self.limit_usd

    @property
    def spent(self) -> bool:
        return self.spent_usd >= self.limit_usd


def period_starts(now: datetime | None = None) -> dict[str, datetime]:
    """Local midnight today and local midnight on the first of this month."""
    local = (now or datetime.now()).astimezone()
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"daily": day, "monthly": day.replace(day=1)}


def budget_statuses(
    settings: Settings,
    provider_name: str,
    *,
    ledger: UsageLedger | None = None,
    now: datetime | None = None,
) -> list[BudgetStatus]:
    """Every budget that applies to a call on ``provider_name``, with its spend so far."""
    wanted: list[tuple[str, str, float, str | None]] = []  # (period, config key, limit, provider filter)
    budget = settings.budget
    for period in ("daily", "monthly"):
        limit = getattr(budget, f"{period}_usd")
        if limit is not None:
            wanted.append((period, f"[budget] {period}_usd", limit, None))
    per_provider = budget.providers.get(provider_name)
    if per_provider is not None:
        for period in ("daily", "monthly"):
            limit = getattr(per_provider, f"{period}_usd")
            if limit is not None:
                wanted.append((period, f"[budget.providers.{provider_name}] {period}_usd", limit, provider_name))
    if not wanted:
        return []

    starts = period_starts(now)
    own = ledger is None
    target = UsageLedger(read_only=True) if ledger is None else ledger
    statuses = []
    try:
        if not target.exists():
            spend: dict[tuple[str, str | None], tuple[float, int]] = {}
        else:
            spend = {}
            for period, _, _, provider in wanted:
                query = UsageQuery(since=starts[period].timestamp(), provider=provider)
                totals = target.summarize(query, by="provider").totals
                spend[(period, provider)] = (totals.cost_usd, totals.unknown_cost)
    finally:
        if own:
            target.close()
    for period, key, limit, provider in wanted:
        spent, unknown = spend.get((period, provider), (0.0, 0))
        name = f"{period} budget" + (f" for {provider}" if provider else "")
        phrase = "today" if period == "daily" else "this month"
        if provider:
            phrase = f"on {provider} {phrase}"
        statuses.append(BudgetStatus(name, key, phrase, limit, spent, unknown))
    return statuses


def check_budget(
    settings: Settings,
    resolved: ResolvedModel,
    *,
    ignore: bool = False,
    price: Price | None = None,
    ledger: UsageLedger | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Before a call to ``resolved``: raise BudgetExceededError when a budget is spent.

    Returns warnings to print on stderr: a budget past 80 %, a budget ignored because of
    ``ignore`` (``--ignore-budget``), calls of unknown cost left out of the spend, or a
    ledger that could not be read (then the call is allowed). A free model is never
    checked.
    """
    if not _has_budget(settings, resolved.provider_name):
        return []
    price = price if price is not None else price_for(resolved)
    if price is not None and price.is_free:
        return []
    try:
        statuses = budget_statuses(settings, resolved.provider_name, ledger=ledger, now=now)
    except LedgerError as exc:
        return [f"Budget not checked: {exc}."]
    warnings: list[str] = []
    for status in statuses:
        if status.spent:
            if not ignore:
                raise BudgetExceededError(status)
            warnings.append(
                f"Ignoring the {status.name} ({format_cost(status.spent_usd)} of "
                f"{format_cost(status.limit_usd)} spent {status.period_phrase})."
            )
        elif status.fraction >= WARN_FRACTION:
            warnings.append(
                f"{status.fraction:.0%} of the {status.name} used: {format_cost(status.spent_usd)} of "
                f"{format_cost(status.limit_usd)} spent {status.period_phrase}."
            )
        if status.unknown_cost_calls:
            warnings.append(
                f"{plural(status.unknown_cost_calls, 'call')} {status.period_phrase} "
                f"{'has' if status.unknown_cost_calls == 1 else 'have'} no known cost and "
                f"{'is' if status.unknown_cost_calls == 1 else 'are'} not "
                f"counted against the {status.name}."
            )
    return list(dict.fromkeys(warnings))


def _has_budget(settings: Settings, provider_name: str) -> bool:
    budget = settings.budget
    per_provider = budget.providers.get(provider_name)
    return any(
        value is not None
        for value in (
            budget.daily_usd,
            budget.monthly_usd,
            per_provider.daily_usd if per_provider else None,
            per_provider.monthly_usd if per_provider else None,
        )
    )
