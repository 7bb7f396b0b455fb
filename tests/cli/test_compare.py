"""``llmctl compare`` as a user runs it: the demo model, tiny models, hosted models over real HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from tests.conftest import CliResult
from tests.hosted_servers import provider_table
from tests.test_hostile_security import ALIAS, MARKER, trap
from tests.wire.openai_server import Fault, OpenAIServer, Reply, Slow

__all__ = ["trap"]  # a fixture: a folder named like a repo id, whose Python must never run

Run = Callable[..., CliResult]
KEY = "sk-test-compare-0123456789"
REPO = Path(__file__).resolve().parents[2]
SUITE = """
[[cases]]
name = "france"
prompt = "What is the capital of France?"
checks = { contains = "Paris" }

[[cases]]
name = "sum"
prompt = "What is 7 plus 5?"
checks = { regex = '\\b12\\b', max_tokens = 30 }
"""


@pytest.fixture
def oai(oai: OpenAIServer, config_file: Path) -> OpenAIServer:
    """The shared server, given more time: compare runs its calls side by side."""
    config_file.write_text(provider_table("openai", oai.base_url, timeout=10))
    return oai


def ledger_rows() -> list[LedgerRecord]:
    with UsageLedger() as ledger:
        return list(ledger.records()) if ledger.exists() else []


def report(result: CliResult) -> dict[str, Any]:
    assert result.stdout, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_the_demo_scores_full_marks_on_the_example_suite(run_llmctl: Run) -> None:
    result = run_llmctl("compare", "-m", "demo", "--cases", str(REPO / "cases.toml"), "--json", "--fail-under", "1")
    assert result.exit_code == 0, result.stderr
    data = report(result)
    (demo,) = data["models"]
    assert demo["pass_rate"] == 1.0 and demo["status"] == "ok"
    assert demo["cost_usd"] == 0.0 and demo["token_source"] == "exact"
    assert demo["memory"]["precision"] == "fp32" and demo["memory"]["fits"] is True
    assert all(case["pass_rate"] == 1.0 for case in data["cases"])
    assert {row.command for row in ledger_rows()} == {"compare"}
    assert len(ledger_rows()) == len(data["cases"]) == len(data["calls"])


def test_a_tiny_random_model_is_measured_and_scores_zero(
    run_llmctl: Run, tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text(SUITE)
    tiny = str(tiny_models["llama"])
    result = run_llmctl(
        "compare",
        "-m",
        "demo",
        "-m",
        tiny,
        "--cases",
        str(cases),
        "--runs",
        "2",
        "--max-tokens",
        "8",
        "--json",
        "--fail-under",
        "0.9",
    )
    assert result.exit_code == 1
    demo, random = report(result)["models"]
    assert (demo["pass_rate"], demo["passed"], demo["checked"]) == (1.0, 4, 4)
    assert random["pass_rate"] == 0.0 and random["status"] == "ok" and random["calls"] == 4
    assert random["total_s"]["count"] == 4 and random["output_tokens"] is not None
    assert random["total_s"]["min"] <= random["total_s"]["median"] <= random["total_s"]["max"]
    assert f"{tiny} passed 0 of 4 checked calls, below --fail-under 0.9." in result.stderr
    assert "demo passed" not in result.stderr
    assert len(ledger_rows()) == 8


PRICED = """
[models.mini]
provider = "openai"
id = "gpt-4o-mini"
input_price_per_mtok = 0.15
output_price_per_mtok = 0.6

[models.big]
provider = "openai"
id = "gpt-4o"
input_price_per_mtok = 2.5
output_price_per_mtok = 10.0
"""


def test_hosted_models_run_at_the_same_time(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + PRICED)
    delay = 1.5
    oai.add(Slow(delay, Reply(text="Paris.", usage=(12, 2))), Slow(delay, Reply(text="Paris.", usage=(12, 2))))
    result = run_llmctl("compare", "-m", "mini", "-m", "big", "Capital of France?", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(oai.requests_to("/v1/chat/completions")) == 2
    # Each ledger row holds when its call started and how long it took: the two spans must overlap.
    spans = [(row.ts, row.ts + (row.total_s or 0.0)) for row in ledger_rows()]
    assert len(spans) == 2 and all(end - start >= delay for start, end in spans)
    overlap = min(end for _, end in spans) - max(start for start, _ in spans)
    assert overlap > delay / 4, f"the calls did not run at the same time: {spans}"  # one after the other: <= 0
    mini, full = report(result)["models"]
    assert mini["total_s"]["median"] >= delay and full["total_s"]["median"] >= delay
    assert (mini["input_tokens"], mini["output_tokens"], mini["token_source"]) == (12, 2, "provider")
    assert mini["cost_usd"] == pytest.approx(12 * 0.15e-6 + 2 * 0.6e-6)
    assert mini["cost_per_1000_calls_usd"] == pytest.approx(1000 * mini["cost_usd"])
    assert mini["cheapest"] and not full["cheapest"]


def test_a_failing_model_gets_its_error_and_the_others_still_run(
    run_llmctl: Run, oai: OpenAIServer, config_file: Path
) -> None:
    config_file.write_text(config_file.read_text() + '\n[models.broken]\nprovider = "openai"\nid = "gpt-4o"\n')
    oai.add(Fault(500, message="upstream on fire"), path=None)
    oai.default = Reply(text="The capital of France is Paris.")
    result = run_llmctl("compare", "-m", "broken", "-m", "demo", "-m", "nope", "What is the capital of France?")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    header = lines[0].split("\t")
    rows = {line.split("\t")[0]: dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:4]}
    assert "upstream on fire" in rows["broken"]["status"]
    assert rows["demo"]["status"] == "ok" and rows["demo"]["tokens in/out"].endswith("(exact)")
    assert rows["nope"]["status"] == "error: Unknown model 'nope'."
    assert rows["broken"]["cost/call"] == "unknown"  # a failed call without counts is not $0
    assert "--- demo ---\nThe capital of France is Paris.\n" in result.stdout
    assert "2 models of 3 failed: broken, nope." in result.stderr
    # The ledger names a model by provider and id (an alias by its target).
    assert sorted((row.provider, row.status) for row in ledger_rows()) == [("hf", "ok"), ("openai", "error")]


def test_a_missing_key_stops_that_model_after_one_call(run_llmctl: Run, tmp_path: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text(SUITE)
    result = run_llmctl("compare", "-m", "anthropic/claude-haiku-4-5", "--cases", str(cases), "--runs", "3", "--json")
    assert result.exit_code == 1
    (claude,) = report(result)["models"]
    assert claude["calls"] == 1 and "ANTHROPIC_API_KEY" in claude["error"]
    assert claude["pass_rate"] == 0.0 and claude["checked"] == 6


def test_prompt_comes_from_argument_and_stdin_and_flags_reach_the_server(run_llmctl: Run, oai: OpenAIServer) -> None:
    args = ("-s", "Be terse.", "--temperature", "0.3", "--max-tokens", "21", "--seed", "5")
    result = run_llmctl("compare", "-m", "openai/gpt-4o-mini", "Summarize:", *args, stdin=b"some notes\n")
    assert result.exit_code == 0, result.stderr
    body = oai.last_request.json
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Summarize:\n\nsome notes\n"},
    ]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.3, 21, 5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("compare", "Hi"), "No models to compare."),
        (("compare", "-m", "demo"), "No prompt given."),
        (("compare", "-m", "demo", "Hi", "--json", "--csv"), "--json and --csv cannot be combined"),
        (("compare", "-m", "demo", "Hi", "--cases", "cases.toml"), "either a PROMPT or --cases"),
        (("compare", "-m", "demo", "--cases", "nowhere.toml"), "nowhere.toml: no such file."),
    ],
)
def test_usage_errors_exit_2(run_llmctl: Run, args: tuple[str, ...], message: str) -> None:
    result = run_llmctl(*args, stdin=b"" if "No prompt" in message else None)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert ledger_rows() == []


def test_a_spent_budget_refuses_hosted_calls_unless_ignored(
    run_llmctl: Run, oai: OpenAIServer, config_file: Path
) -> None:
    config_file.write_text("[budget]\ndaily_usd = 0.0\n\n" + config_file.read_text())
    refused = run_llmctl("compare", "-m", "openai/gpt-4o-mini", "-m", "demo", "Capital of France?", "--json")
    assert refused.exit_code == 1
    gpt, demo = report(refused)["models"]
    assert "daily budget" in gpt["error"] and demo["status"] == "ok"
    assert oai.requests == []
    allowed = run_llmctl("compare", "-m", "openai/gpt-4o-mini", "Capital?", "--ignore-budget")
    assert allowed.exit_code == 0, allowed.stderr
    assert "Ignoring the daily budget" in allowed.stderr


JUDGED = """
[[cases]]
name = "france"
prompt = "What is the capital of France?"
checks = { contains = "Paris", judge = { model = "mini", rubric = "Names Paris as the capital." } }

[[cases]]
name = "japan"
prompt = "What is the capital of Japan?"
checks = { judge = { model = "mini", rubric = "Names Tokyo." } }
"""


def test_a_judge_grades_each_answer_and_its_cost_is_kept_apart(
    run_llmctl: Run, oai: OpenAIServer, config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text(config_file.read_text() + PRICED)
    cases = tmp_path / "cases.toml"
    cases.write_text(JUDGED)
    oai.add(Reply(text="PASS\nIt names Paris.", usage=(100, 5)), Reply(text="Hmm, hard to say.", usage=(100, 5)))
    result = run_llmctl("compare", "-m", "demo", "--cases", str(cases), "--json")
    assert result.exit_code == 0, result.stderr
    data = report(result)
    (demo,) = data["models"]
    assert (demo["passed"], demo["checked"]) == (1, 2)  # the unclear verdict does not pass
    assert demo["cost_usd"] == 0.0  # the demo's own calls
    assert demo["judged"] == 2 and demo["judge_cost_usd"] == pytest.approx(2 * (100 * 0.15e-6 + 5 * 0.6e-6))
    france, japan = data["calls"]
    assert france["judge"] == {"judge": "mini", "passed": True, "reason": "It names Paris.", "cost_usd": 1.8e-05}
    assert france["checks"][-1] == {"check": "judge", "passed": True, "detail": "mini: PASS (It names Paris.)"}
    assert japan["checks"][-1]["detail"].startswith("mini: unclear verdict (neither PASS nor FAIL)")
    first = oai.requests_to("/v1/chat/completions")[0].json
    assert first["temperature"] == 0.0
    assert "Names Paris as the capital." in first["messages"][1]["content"]
    assert "The capital of France is Paris." in first["messages"][1]["content"]
    assert sorted(row.provider for row in ledger_rows()) == ["hf", "hf", "openai", "openai"]
    assert {row.model for row in ledger_rows() if row.provider == "openai"} == {"gpt-4o-mini"}
    assert {row.command for row in ledger_rows()} == {"compare"}


def test_an_unknown_judge_is_a_usage_error_before_any_call(run_llmctl: Run, tmp_path: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text('[[cases]]\nprompt = "Hi"\nchecks = { judge = { model = "nobody", rubric = "r" } }\n')
    result = run_llmctl("compare", "-m", "demo", "--cases", str(cases))
    assert result.exit_code == 2
    assert "Unknown model 'nobody'" in result.stderr
    assert ledger_rows() == []


def test_the_estimate_is_printed_before_the_calls(
    run_llmctl: Run, oai: OpenAIServer, config_file: Path, tmp_path: Path
) -> None:
    from llmctl.config import load_settings
    from llmctl.providers.registry import resolve
    from llmctl.services.generation import build_messages
    from llmctl.services.token_counting import count_tokens

    config_file.write_text(config_file.read_text() + PRICED)
    cases = tmp_path / "cases.toml"
    cases.write_text(SUITE)
    result = run_llmctl(
        "compare", "-m", "mini", "-m", "demo", "--cases", str(cases), "--runs", "3", "--max-tokens", "10"
    )
    assert result.exit_code == 0, result.stderr
    mini = resolve("mini", load_settings(config_file))
    prompts = ["What is the capital of France?", "What is 7 plus 5?"]
    counted = sum(count_tokens(mini, build_messages(p, None)).tokens for p in prompts) * 3
    input_usd, output_usd = counted * 0.15e-6, 60 * 0.6e-6
    from llmctl.services.usage.accounting import format_cost

    assert (
        f"  mini: 6 calls, {counted} input tokens (exact): {format_cost(input_usd)} input + "
        f"at most {format_cost(output_usd)} output (--max-tokens 10)"
    ) in result.stderr
    assert "demo:" not in result.stderr  # a local model costs nothing and is not estimated
    assert result.stderr.index("Estimated cost before running (6 hosted calls") < result.stderr.index("Total:")


def test_piped_output_of_a_suite_is_plain_text(run_llmctl: Run, tmp_path: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text(SUITE)
    result = run_llmctl("compare", "-m", "demo", "--cases", str(cases))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].split("\t") == [
        "model", "first token", "total", "out tok/s", "tokens in/out", "cost/call", "per 1,000", "pass rate",
        "memory", "status",
    ]  # fmt: skip
    assert "case\tchecks\tdemo\tall\n" in result.stdout
    assert 'france\tcontains "Paris"\t1/1\t100% (1/1)\n' in result.stdout
    assert "=== france ===\n--- demo ---\nThe capital of France is Paris.\n" in result.stdout
    assert "=== sum ===\n--- demo ---\n7 + 5 = 12.\n" in result.stdout
    assert "\x1b" not in result.stdout and "█" not in result.stdout  # no colours, no bars in a pipe


@pytest.mark.parametrize(
    ("flag", "start"),
    [
        ("--csv", "model,provider,status,first_token_s,total_s,output_tokens_per_s,input_tokens,output_tokens,"),
        ("--markdown", "# Model comparison\n\n| Model | First token | Total |"),
        ("--json", '{\n  "runs": 1,\n  "interrupted": false,\n  "models": ['),
    ],
)
def test_share_formats_from_the_command(run_llmctl: Run, flag: str, start: str) -> None:
    result = run_llmctl("compare", "-m", "demo", "What is the capital of France?", flag)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(start)
    assert "The capital of France is Paris." in result.stdout or flag == "--csv"


def test_fail_under_without_checks_says_it_judges_nothing(run_llmctl: Run) -> None:
    result = run_llmctl("compare", "-m", "demo", "Hello", "--fail-under", "0.5")
    assert result.exit_code == 0, result.stderr
    assert "--fail-under has nothing to judge: no case has checks." in result.stderr


def test_system_flag_is_the_default_for_cases_without_one(run_llmctl: Run, oai: OpenAIServer, tmp_path: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text('[[cases]]\nprompt = "One"\n\n[[cases]]\nprompt = "Two"\nsystem = "Own system."\n')
    result = run_llmctl("compare", "-m", "openai/gpt-4o-mini", "--cases", str(cases), "-s", "Flag system.")
    assert result.exit_code == 0, result.stderr
    systems = [r.json["messages"][0]["content"] for r in oai.requests_to("/v1/chat/completions")]
    assert systems == ["Flag system.", "Own system."]


def test_a_setting_a_model_does_not_take_is_named(run_llmctl: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.wire.anthropic_server import AnthropicServer

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with AnthropicServer(api_key=KEY) as server:
        config = Path(os.environ["LLMCTL_CONFIG"])
        config.write_text(f'[providers.anthropic]\nbase_url = "{server.base_url}"\ntimeout = 10\nmax_retries = 0\n')
        result = run_llmctl("compare", "-m", "anthropic/claude-haiku-4-5", "-m", "demo", "Hi", "--temperature", "0.2")
    assert result.exit_code == 0, result.stderr
    assert "anthropic/claude-haiku-4-5 does not take --temperature; ignored for it." in result.stderr
    assert "demo does not take" not in result.stderr


def test_a_repo_id_never_loads_the_folder_of_that_name_here(
    run_llmctl: Run, config_file: Path, trap: Path, tmp_path: Path
) -> None:
    config_file.write_text(ALIAS)
    result = run_llmctl("compare", "-m", "phi", "-m", "demo", "What is the capital of France?", "--json")
    assert not (tmp_path / MARKER).exists(), "the folder's Python ran"
    assert result.exit_code == 1
    phi, demo = report(result)["models"]
    assert phi["error"] == "Model 'microsoft/phi-2' is not in the local Hugging Face cache."
    assert "llmctl models download microsoft/phi-2" in phi["hint"] and phi["memory"] is None
    assert "phi: " in result.stderr and "llmctl models download microsoft/phi-2" in result.stderr
    assert demo["status"] == "ok"


def test_a_case_with_a_schema_asks_for_structured_output_and_checks_it(
    run_llmctl: Run, oai: OpenAIServer, tmp_path: Path
) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text('[[cases]]\nname = "person"\nprompt = "Invent a person"\nschema = { name = "str", age = "int" }\n')
    oai.add(Reply(text='{"name": "Ada", "age": 36}'), Reply(text='{"name": "Bob"}'))
    for expected_rate in (1.0, 0.0):
        result = run_llmctl("compare", "-m", "openai/gpt-4o-mini", "--cases", str(cases), "--json")
        sent = oai.requests_to("/v1/chat/completions")[-1].json["response_format"]
        assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["required"] == ["name", "age"]
        (model,) = report(result)["models"]
        assert model["pass_rate"] == expected_rate, result.stdout


def test_a_case_with_a_bad_schema_names_its_line(run_llmctl: Run, tmp_path: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text('[[cases]]\nprompt = "x"\nschema = { type = "strng" }\n')
    result = run_llmctl("compare", "-m", "demo", "--cases", str(cases))
    assert result.exit_code == 2
    assert "schema" in result.stderr and "not a valid JSON schema" in result.stderr
