"""``llmctl bench`` as a user runs it: the table, --json, exit codes, and the ledger only with --record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmctl.services.usage.ledger import UsageLedger, ledger_path
from tests.conftest import CliResult

Run = Callable[..., CliResult]
SMALL = ("--runs", "2", "--warmup", "1", "--prompt-tokens", "16", "--max-tokens", "5")


def as_json(result: CliResult) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_json_reports_exact_counts_for_every_run(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    data = as_json(run_llmctl("bench", str(tiny_models["llama"]), *SMALL, "--json"))
    assert data["settings"]["runs"] == 2 and data["settings"]["warmup"] == 1
    assert len(data["runs"]) == 2 and len(data["warmup_runs"]) == 1
    assert [(r["prompt_tokens"], r["output_tokens"]) for r in data["runs"]] == [(16, 5), (16, 5)]
    for metric in ("ttft_s", "prefill_tokens_per_s", "decode_tokens_per_s", "total_s"):
        stat = data["summary"][metric]
        assert stat["count"] == 2 and stat["min"] <= stat["median"] <= stat["max"]
    assert data["environment"]["device"] == "cpu"
    assert data["load_s"] > 0


def test_table_names_each_figure_and_the_token_counts(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("bench", str(tiny_models["gemma"]), *SMALL)
    assert result.exit_code == 0, result.stderr
    for label in ("Time to first token", "Prefill", "Decode", "Whole call", "median", "min", "max"):
        assert label in result.stdout
    assert "16 prompt → 5 new tokens" in result.stdout
    assert "2 runs after 1 warm-up" in result.stdout
    assert "Peak memory (RSS)" in result.stdout and "MiB" in result.stdout
    assert "Load" in result.stdout


def test_nothing_is_recorded_without_record(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("bench", str(tiny_models["llama"]), *SMALL, "--json")
    assert result.exit_code == 0, result.stderr
    assert not ledger_path().exists() or UsageLedger().count() == 0


def test_record_writes_every_call_as_bench(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    data = as_json(run_llmctl("bench", str(tiny_models["llama"]), *SMALL, "--record", "--json"))
    assert data["recorded"] == 3  # one warm-up and two timed runs: all used tokens
    with UsageLedger() as ledger:
        rows = list(ledger.records())
    assert len(rows) == 3
    assert {row.command for row in rows} == {"bench"}
    assert [(row.input_tokens, row.output_tokens) for row in rows] == [(16, 5)] * 3
    assert all(row.token_source == "exact" and row.status == "ok" for row in rows)


def test_quantize_on_an_api_model_is_a_usage_error(run_llmctl: Run) -> None:
    result = run_llmctl("bench", "openai/gpt-4o-mini", "--quantize", "8bit")
    assert result.exit_code == 2
    assert "apply to local models" in result.stderr


def test_unknown_quantization_is_refused_by_the_parser(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("bench", str(tiny_models["llama"]), "--quantize", "3bit")
    assert result.exit_code == 2
    assert "3bit" in result.stderr


def test_a_benchmark_that_does_not_fit_the_window_says_so(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("bench", str(tiny_models["llama"]), "--prompt-tokens", "250", "--max-tokens", "20")
    assert result.exit_code == 2
    assert "context window of 256 tokens" in result.stderr
    assert "--prompt-tokens" in result.stderr  # the hint names the flag to change, not -m
    assert result.stdout == ""


def test_hosted_model_over_the_wire(run_llmctl: Run, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.wire.openai_server import OpenAIServer, Reply

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-bench")
    reply = Reply(chunks=["One", " two", " three", " four"], usage=(64, 4))
    with OpenAIServer(api_key="sk-test-bench", default=reply) as server:
        config_file.write_text(f'[providers.openai]\nbase_url = "{server.base_url}"\nmax_retries = 0\n')
        result = run_llmctl("bench", "openai/gpt-4o-mini", "--runs", "3", "--warmup", "0", "--max-tokens", "4")
        assert len(server.requests_to("/v1/chat/completions")) == 3
    assert result.exit_code == 0, result.stderr
    assert "64 prompt → 4 new tokens" in result.stdout
    assert "remote API" in result.stdout
    assert "Prompt cache" in result.stdout and "different line" in result.stdout
    assert "Peak GPU" not in result.stdout
