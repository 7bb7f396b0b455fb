"""The ``judge`` check: another model grades an answer against a rubric.

Judging runs after every model has answered, one judge call at a time, so a judge never competes
with the models it grades (for memory, or for a rate limit). Each judge call goes through
``run_one`` like any other call (budget, run, ledger row with command ``compare``); its cost is
kept apart from the cost of the answer it grades. The judge must reply ``PASS`` or ``FAIL`` on its
first line; anything else is an unclear verdict, which does not pass.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import replace

from llmctl.config import Settings
from llmctl.domain import GenerationParams, GenerationRequest, Message
from llmctl.errors import LlmctlError
from llmctl.providers.base import Provider, ResolvedModel
from llmctl.providers.registry import open_provider, resolve
from llmctl.services.compare.cases import Case
from llmctl.services.compare.checks import CheckResult, JudgeSpec, Verdict
from llmctl.services.compare.run import Call, Comparison, run_one

JUDGE_SYSTEM = (
    "You grade answers against a rubric. Reply with PASS or FAIL on the first line, "
    "then one sentence saying why. Judge only by the rubric."
)
# Greedy and short: a verdict and a reason, graded the same way each run.
JUDGE_PARAMS = GenerationParams(temperature=0.0, max_tokens=200)
_VERDICT = re.compile(r"^\W*(PASS|FAIL)\b\W*(.*)", re.IGNORECASE | re.DOTALL)


def judge_prompt(rubric: str, case: Case, answer: str) -> str:
    return f"Rubric:\n{rubric}\n\nQuestion:\n{case.prompt}\n\nAnswer to grade:\n{answer}"


def parse_verdict(reply: str) -> tuple[bool | None, str]:
    """``(True, why)`` for PASS, ``(False, why)`` for FAIL, ``(None, reply)`` when the reply is neither."""
    match = _VERDICT.match(reply.strip())
    if match is None:
        return None, reply.strip()
    reason = " ".join(match.group(2).split())
    return match.group(1).upper() == "PASS", reason


def resolve_judges(cases: list[Case], settings: Settings) -> dict[str, ResolvedModel]:
    """Every judge model the cases name, resolved before anything runs (an unknown one is a usage error)."""
    judges: dict[str, ResolvedModel] = {}
    for case in cases:
        spec = case.checks.judge
        if spec is not None and spec.model not in judges:
            judges[spec.model] = resolve(spec.model, settings)
    return judges


def judge_calls(
    settings: Settings,
    comparison: Comparison,
    judges: dict[str, ResolvedModel],
    *,
    ignore_budget: bool = False,
    opener: Callable[[ResolvedModel], Provider] = open_provider,
    stop: threading.Event | None = None,
) -> None:
    """Grade every answered call whose case has a judge check; the verdict joins the call's checks."""
    cases = {case.name: case for case in comparison.cases}
    for model, resolved in judges.items():  # one judge at a time, each loaded (or connected) once
        wanted = [
            (entry, index, call)
            for entry in comparison.models
            for index, call in enumerate(entry.calls)
            if call.ok and _judged_by(cases[call.case]) == model
        ]
        if not wanted:
            continue
        try:
            provider = opener(resolved)
        except LlmctlError as exc:
            for entry, index, call in wanted:
                entry.calls[index] = _with_verdict(
                    call, Verdict(model, False, f"judge failed: {exc.message}", None, clear=False)
                )
            continue
        try:
            for entry, index, call in wanted:
                if stop is not None and stop.is_set():
                    return
                case = cases[call.case]
                assert case.checks.judge is not None
                verdict, warnings = _grade(
                    settings, resolved, provider, case.checks.judge, case, call, ignore_budget, stop
                )
                entry.calls[index] = _with_verdict(call, verdict)
                comparison.warnings.extend(w for w in warnings if w not in comparison.warnings)
        finally:
            provider.close()


def _judged_by(case: Case) -> str | None:
    return None if case.checks.judge is None else case.checks.judge.model


def _grade(
    settings: Settings,
    resolved: ResolvedModel,
    provider: Provider,
    spec: JudgeSpec,
    case: Case,
    call: Call,
    ignore_budget: bool,
    stop: threading.Event | None,
) -> tuple[Verdict, tuple[str, ...]]:
    prompt = judge_prompt(spec.rubric, case, call.outcome.text)
    request = GenerationRequest((Message("system", JUDGE_SYSTEM), Message("user", prompt)), JUDGE_PARAMS)
    outcome = run_one(settings, resolved, provider, request, ignore_budget=ignore_budget, prompt_text=prompt, stop=stop)
    if outcome.error is not None:
        return Verdict(
            spec.model, False, f"judge failed: {outcome.error}", outcome.cost_usd, clear=False
        ), outcome.warnings
    passed, reason = parse_verdict(outcome.text)
    if passed is None:
        unclear = f"unclear verdict (neither PASS nor FAIL): {reason[:80]}"
        return Verdict(spec.model, False, unclear, outcome.cost_usd, clear=False), outcome.warnings
    return Verdict(spec.model, passed, reason, outcome.cost_usd), outcome.warnings


def _with_verdict(call: Call, verdict: Verdict) -> Call:
    """The call with the verdict in place of its "not judged yet" placeholder check."""
    checks = tuple(check for check in call.checks if check.name != "judge")
    return replace(call, checks=(*checks, CheckResult("judge", verdict.passed, verdict.detail)), verdict=verdict)
