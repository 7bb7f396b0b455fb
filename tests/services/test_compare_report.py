"""The report from known calls: figures, marks, and the JSON, CSV and Markdown written exactly."""

from __future__ import annotations

from llmctl.domain import Completion, CountSource, FinishReason, Usage
from llmctl.services.compare.cases import Case
from llmctl.services.compare.checks import Checks, run_checks
from llmctl.services.compare.formats import csv_text, markdown_text
from llmctl.services.compare.report import summarize, to_json
from llmctl.services.compare.run import Call, CallOutcome, Comparison, ModelEntry
from llmctl.services.generation import GenerationResult, RunStatus, Timing

CASE = Case("capital", "Capital of France?", checks=Checks(contains=("Paris",)))


def _call(model: str, text: str, first: float, total: float, usage: Usage, cost: float | None) -> Call:
    completion = Completion(text, FinishReason.STOP, usage)
    result = GenerationResult(completion, model, "p", Timing(first, total), RunStatus.OK)
    checks = tuple(run_checks(CASE.checks, text, usage.output_tokens))
    return Call(model, CASE.name, 1, CallOutcome(result, cost), checks)


def comparison() -> Comparison:
    fast = ModelEntry("fast", "fast", provider="openai")
    fast.calls.append(_call("fast", "Paris.", 0.1, 0.5, Usage(10, 2, CountSource.PROVIDER), 0.002))
    slow = ModelEntry("slow", "slow", provider="hf", local=True)
    slow.calls.append(_call("slow", "Lyon | maybe.", 0.5, 2.0, Usage(12, 4, CountSource.EXACT), 0.0))
    unpriced = ModelEntry("mystery", "mystery", provider="vllm")
    unpriced.calls.append(_call("mystery", "Paris", 0.2, 1.0, Usage(None, None, CountSource.UNKNOWN), None))
    broken = ModelEntry("nope", "nope", error="Unknown model 'nope'.")
    return Comparison([fast, slow, unpriced, broken], [CASE], runs=1)


def test_figures_and_marks() -> None:
    report = summarize(comparison())
    fast, slow, mystery, nope = report.models
    assert fast.fastest and not fast.cheapest
    assert slow.cheapest and not slow.fastest  # $0 is a known cost, the lowest
    assert mystery.cost_per_call_usd is None and mystery.cost_per_thousand_usd is None  # unknown, never $0
    assert fast.cost_per_thousand_usd == 2.0
    assert fast.output_tokens_per_s is not None and fast.output_tokens_per_s.median == 4.0
    assert [m.pass_rate for m in report.models] == [1.0, 0.0, 1.0, 0.0]
    assert nope.status == "error: Unknown model 'nope'." and nope.calls == 0
    (case,) = report.cases
    assert (case.passed, case.checked) == (2, 4)
    assert [m.name for m in report.below(0.5)] == ["slow", "nope"]


def test_csv_exactly() -> None:
    assert csv_text(summarize(comparison())) == (
        "model,provider,status,first_token_s,total_s,output_tokens_per_s,input_tokens,output_tokens,token_source,"
        "cost_usd,cost_per_1000_calls_usd,pass_rate,fastest,cheapest\n"
        "fast,openai,ok,0.1000,0.5000,4.00,10,2,provider,0.002,2.0,1,true,false\n"
        "slow,hf,ok,0.5000,2.0000,2.00,12,4,exact,0.0,0.0,0,false,true\n"
        "mystery,vllm,ok,0.2000,1.0000,,,,unknown,,,1,false,false\n"
        "nope,,error: Unknown model 'nope'.,,,,,,,,,0,false,false\n"
    )


def test_json_exactly_for_one_model() -> None:
    data = to_json(summarize(comparison()))
    assert data["models"][0] == {
        "model": "fast",
        "provider": "openai",
        "local": False,
        "status": "ok",
        "error": None,
        "hint": None,
        "calls": 1,
        "ok_calls": 1,
        "first_token_s": {"median": 0.1, "min": 0.1, "max": 0.1, "count": 1},
        "total_s": {"median": 0.5, "min": 0.5, "max": 0.5, "count": 1},
        "output_tokens_per_s": {"median": 4.0, "min": 4.0, "max": 4.0, "count": 1},
        "input_tokens": 10,
        "output_tokens": 2,
        "token_source": "provider",
        "cost_usd": 0.002,
        "cost_per_call_usd": 0.002,
        "cost_per_1000_calls_usd": 2.0,
        "passed": 1,
        "checked": 1,
        "pass_rate": 1.0,
        "judged": 0,
        "judge_cost_usd": None,
        "fastest": True,
        "cheapest": False,
        "memory": None,
    }
    assert data["cases"] == [
        {"name": "capital", "checks": ['contains "Paris"'], "passed": 2, "checked": 4, "pass_rate": 0.5}
    ]
    assert data["calls"][1] == {
        "model": "slow",
        "case": "capital",
        "run": 1,
        "status": "ok",
        "error": None,
        "text": "Lyon | maybe.",
        "first_token_s": 0.5,
        "total_s": 2.0,
        "input_tokens": 12,
        "output_tokens": 4,
        "token_source": "exact",
        "cost_usd": 0.0,
        "passed": False,
        "checks": [{"check": "contains", "passed": False, "detail": 'missing "Paris"'}],
        "judge": None,
    }


def test_markdown_exactly() -> None:
    assert markdown_text(summarize(comparison())) == (
        "# Model comparison\n"
        "\n"
        "| Model | First token | Total | Output tok/s | Tokens in / out | Cost | Per 1,000 | Pass rate | Status |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| fast (fastest) | 100 ms | 0.50 s | 4.0 | 10 / 2 (provider) | $0.002000 | $2.00 | 100% (1/1) | ok |\n"
        "| slow (cheapest) | 500 ms | 2.00 s | 2.0 | 12 / 4 (exact) | $0 | $0 | 0% (0/1) | ok |\n"
        "| mystery | 200 ms | 1.00 s | unknown | unknown | unknown | unknown | 100% (1/1) | ok |\n"
        "| nope | unknown | unknown | unknown | unknown | unknown | unknown | 0% (0/1) "
        "| error: Unknown model 'nope'. |\n"
        "\n"
        "## Cases\n"
        "\n"
        "| Case | Checks | Pass rate |\n"
        "|---|---|---|\n"
        '| capital | contains "Paris" | 50% (2/4) |\n'
        "\n"
        "## Answers\n"
        "\n"
        "**fast**\n"
        "\n"
        "```\n"
        "Paris.\n"
        "```\n"
        "\n"
        "**slow**\n"
        "\n"
        "```\n"
        "Lyon | maybe.\n"
        "```\n"
        "\n"
        'Failed checks: contains: missing "Paris"\n'
        "\n"
        "**mystery**\n"
        "\n"
        "```\n"
        "Paris\n"
        "```\n"
        "\n"
        "**nope** (not run: Unknown model 'nope'.)\n"
    )


def test_an_answer_with_a_fence_cannot_break_out_of_its_block() -> None:
    entry = ModelEntry("m", "m", provider="p")
    entry.calls.append(_call("m", "```\nrm -rf /\n```", 0.1, 0.2, Usage(1, 1, CountSource.EXACT), 0.0))
    text = markdown_text(summarize(Comparison([entry], [CASE], runs=1)))
    assert "````\n```\nrm -rf /\n```\n````" in text


def test_a_tie_marks_nobody() -> None:
    entries = []
    for name in ("a", "b"):
        entry = ModelEntry(name, name, provider="hf", local=True)
        entry.calls.append(_call(name, "Paris", 0.1, 0.5, Usage(1, 1, CountSource.EXACT), 0.0))
        entries.append(entry)
    report = summarize(Comparison(entries, [CASE], runs=1))
    assert [(m.fastest, m.cheapest) for m in report.models] == [(False, False), (False, False)]
