"""What a comparison found, per model and per case, and the same as JSON, CSV and Markdown.

Figures per model, over its calls: the median time to first token and whole call (with min and max
when there were several runs), output tokens per second (output tokens / whole call, as the user
waits for it), token totals with their source, cost of the calls (unknown when any call's cost is
unknown: never shown as $0), per call and per 1,000 such calls, and the pass rate (calls whose every
check passed / calls planned with checks; a call not made counts as failed).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from llmctl.domain import RunStatus
from llmctl.services.compare.checks import Verdict
from llmctl.services.compare.memory import MemoryFit
from llmctl.services.compare.run import Call, Comparison, ModelEntry

PER_THOUSAND = 1000


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float
    count: int

    def to_json(self, digits: int = 4) -> dict[str, float | int]:
        return {
            "median": round(self.median, digits),
            "min": round(self.min, digits),
            "max": round(self.max, digits),
            "count": self.count,
        }


def spread(values: Iterable[float | None]) -> Spread | None:
    known = [value for value in values if value is not None]
    if not known:
        return None
    return Spread(statistics.median(known), min(known), max(known), len(known))


@dataclass(frozen=True)
class ModelSummary:
    name: str
    provider: str | None
    local: bool
    calls: int
    ok_calls: int
    planned_calls: int
    error: str | None  # the model's error (it could not run), or the first failed call's
    hint: str | None  # how to fix that error, when it says
    first_token_s: Spread | None
    total_s: Spread | None
    output_tokens_per_s: Spread | None
    input_tokens: int | None
    output_tokens: int | None
    token_source: str | None  # "provider", "exact", "estimate", or "a+b" when calls differ
    cost_usd: float | None
    cost_per_call_usd: float | None
    passed: int
    checked: int  # calls planned with checks
    memory: MemoryFit | None
    judged: int = 0  # answers a judge graded
    judge_cost_usd: float | None = None  # what judging them cost, apart from cost_usd; None: unknown or none
    fastest: bool = False
    cheapest: bool = False

    @property
    def pass_rate(self) -> float | None:
        return None if self.checked == 0 else self.passed / self.checked

    @property
    def cost_per_thousand_usd(self) -> float | None:
        return None if self.cost_per_call_usd is None else self.cost_per_call_usd * PER_THOUSAND

    @property
    def status(self) -> str:
        if self.ok_calls == self.planned_calls:
            return "ok"
        if self.error == RunStatus.INTERRUPTED:
            return f"interrupted ({self.ok_calls}/{self.planned_calls} ok)" if self.ok_calls else "interrupted"
        if self.ok_calls == 0:
            return f"error: {self.error}" if self.error else "not run"
        return f"{self.ok_calls}/{self.planned_calls} ok: {self.error}" if self.error else f"{self.ok_calls} ok"


@dataclass(frozen=True)
class CaseSummary:
    name: str
    checks: tuple[str, ...]
    passed: int
    checked: int

    @property
    def pass_rate(self) -> float | None:
        return None if self.checked == 0 else self.passed / self.checked


@dataclass(frozen=True)
class Report:
    comparison: Comparison
    models: list[ModelSummary]
    cases: list[CaseSummary]

    @property
    def has_checks(self) -> bool:
        return any(case.checked for case in self.cases)

    def below(self, rate: float) -> list[ModelSummary]:
        """The models whose pass rate is under ``rate`` (a model with checks and no rate counts as 0)."""
        return [m for m in self.models if m.checked and (m.pass_rate or 0.0) < rate]


def summarize(comparison: Comparison) -> Report:
    planned = len(comparison.cases) * comparison.runs
    checked_cases = [case for case in comparison.cases if not case.checks.empty]
    models = [_model_summary(entry, planned, len(checked_cases) * comparison.runs) for entry in comparison.models]
    models = _mark_best(models)
    cases = []
    for case in comparison.cases:
        calls = [call for entry in comparison.models for call in entry.calls if call.case == case.name]
        checked = 0 if case.checks.empty else len(comparison.models) * comparison.runs
        passed = sum(call.passed for call in calls) if checked else 0
        cases.append(CaseSummary(case.name, tuple(case.checks.describe()), passed, checked))
    return Report(comparison, models, cases)


def _model_summary(entry: ModelEntry, planned: int, checked: int) -> ModelSummary:
    calls = entry.calls
    ok = [call for call in calls if call.ok]
    usages = [call.outcome.result.completion.usage for call in calls if call.outcome.result is not None]
    first_error = next((call.outcome.error for call in calls if call.outcome.error), None)
    costs = [call.outcome.cost_usd for call in calls]
    cost = None if not calls or any(c is None for c in costs) else sum(c for c in costs if c is not None)
    sources = sorted({usage.source.value for usage in usages})
    verdicts = [call.verdict for call in calls if call.verdict is not None]
    return ModelSummary(
        name=entry.name,
        provider=entry.provider,
        local=entry.local,
        calls=len(calls),
        ok_calls=len(ok),
        planned_calls=planned,
        error=entry.error or first_error,
        hint=entry.hint if entry.error else next((c.outcome.hint for c in calls if c.outcome.error), None),
        first_token_s=spread(_timing(call, "first_token_s") for call in ok),
        total_s=spread(_timing(call, "total_s") for call in ok),
        output_tokens_per_s=spread(_rate(call) for call in ok),
        input_tokens=_total(usage.input_tokens for usage in usages),
        output_tokens=_total(usage.output_tokens for usage in usages),
        token_source="+".join(sources) if sources else None,
        cost_usd=cost,
        cost_per_call_usd=None if cost is None else cost / len(calls),
        passed=sum(call.passed for call in calls if call.checks),
        checked=checked,
        memory=entry.memory,
        judged=len(verdicts),
        judge_cost_usd=_judge_cost(verdicts),
    )


def _judge_cost(verdicts: list[Verdict]) -> float | None:
    costs = [verdict.cost_usd for verdict in verdicts]
    if not costs or any(cost is None for cost in costs):
        return None
    return sum(cost for cost in costs if cost is not None)


def _timing(call: Call, name: str) -> float | None:
    result = call.outcome.result
    return None if result is None else getattr(result.timing, name)


def _rate(call: Call) -> float | None:
    result = call.outcome.result
    if result is None or result.completion.usage.output_tokens is None or result.timing.total_s <= 0:
        return None
    return result.completion.usage.output_tokens / result.timing.total_s


def _total(values: Iterable[int | None]) -> int | None:
    values = list(values)
    if not values or any(value is None for value in values):
        return None
    return sum(value for value in values if value is not None)


def _mark_best(models: list[ModelSummary]) -> list[ModelSummary]:
    """Mark the fastest (median whole call) and the cheapest (per call) among models that answered.

    Only a clear winner is marked: with fewer than two models to rank, or a tie (two free local
    models), nobody is.
    """
    from dataclasses import replace

    answered = [m for m in models if m.ok_calls]
    fastest = _only_lowest([(m, m.total_s.median) for m in answered if m.total_s is not None])
    cheapest = _only_lowest([(m, m.cost_per_call_usd) for m in answered if m.cost_per_call_usd is not None])
    return [replace(m, fastest=m is fastest, cheapest=m is cheapest) for m in models]


def _only_lowest(ranked: list[tuple[ModelSummary, float]]) -> ModelSummary | None:
    if len(ranked) < 2:
        return None
    ranked = sorted(ranked, key=lambda pair: pair[1])
    return ranked[0][0] if ranked[0][1] < ranked[1][1] else None


# -- JSON ------------------------------------------------------------------------------------------------------


def to_json(report: Report) -> dict[str, Any]:
    comparison = report.comparison
    return {
        "runs": comparison.runs,
        "interrupted": comparison.interrupted,
        "models": [_model_json(model) for model in report.models],
        "cases": [
            {
                "name": case.name,
                "checks": list(case.checks),
                "passed": case.passed,
                "checked": case.checked,
                "pass_rate": case.pass_rate,
            }
            for case in report.cases
        ],
        "calls": [_call_json(call) for entry in comparison.models for call in entry.calls],
    }


def _model_json(model: ModelSummary) -> dict[str, Any]:
    def stat(value: Spread | None, digits: int = 4) -> dict[str, float | int] | None:
        return None if value is None else value.to_json(digits)

    memory = model.memory
    return {
        "model": model.name,
        "provider": model.provider,
        "local": model.local,
        "status": model.status,
        "error": model.error,
        "hint": model.hint,
        "calls": model.calls,
        "ok_calls": model.ok_calls,
        "first_token_s": stat(model.first_token_s),
        "total_s": stat(model.total_s),
        "output_tokens_per_s": stat(model.output_tokens_per_s, 2),
        "input_tokens": model.input_tokens,
        "output_tokens": model.output_tokens,
        "token_source": model.token_source,
        "cost_usd": model.cost_usd,
        "cost_per_call_usd": model.cost_per_call_usd,
        "cost_per_1000_calls_usd": model.cost_per_thousand_usd,
        "passed": model.passed,
        "checked": model.checked,
        "pass_rate": model.pass_rate,
        "judged": model.judged,
        "judge_cost_usd": model.judge_cost_usd,
        "fastest": model.fastest,
        "cheapest": model.cheapest,
        "memory": None
        if memory is None
        else {"precision": memory.precision, "needed_bytes": memory.needed_bytes, "fits": memory.fits},
    }


def _call_json(call: Call) -> dict[str, Any]:
    result = call.outcome.result
    usage = None if result is None else result.completion.usage
    return {
        "model": call.model,
        "case": call.case,
        "run": call.run,
        "status": RunStatus.OK.value if call.ok else RunStatus.ERROR.value,
        "error": call.outcome.error,
        "text": call.outcome.text,
        "first_token_s": None
        if result is None or result.timing.first_token_s is None
        else round(result.timing.first_token_s, 4),
        "total_s": None if result is None else round(result.timing.total_s, 4),
        "input_tokens": None if usage is None else usage.input_tokens,
        "output_tokens": None if usage is None else usage.output_tokens,
        "token_source": None if usage is None else usage.source.value,
        "cost_usd": call.outcome.cost_usd,
        "passed": call.passed if call.checks else None,
        "checks": [check.to_json() for check in call.checks],
        "judge": None if call.verdict is None else call.verdict.to_json(),
    }


def json_text(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
