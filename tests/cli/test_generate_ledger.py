"""Every ``llmctl generate`` call lands in the ledger: ok, failed, interrupted; budgets; many at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    TextDelta,
    Usage,
    UsageUpdate,
)
from llmctl.errors import ProviderError
from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from tests.conftest import CliResult
from tests.fakes import FakeBackend
from tests.services.test_usage_ledger import WRITER
from tests.tiny_models import build_tiny_model

Run = Callable[..., CliResult]
GPT_IN, GPT_OUT = 0.15e-6, 0.6e-6  # gpt-4o-mini, USD per token, as genai-prices lists it


HELLO_THERE = (
    UsageUpdate(Usage(1000, None, CountSource.PROVIDER)),
    TextDelta("Hello", tokens=1),
    TextDelta(" there", tokens=1),
    Finished(Usage(1000, 500, CountSource.PROVIDER), FinishReason.STOP),
)


@pytest.fixture
def scripted(fake_provider: FakeBackend) -> FakeBackend:
    """``openai/...`` models answered "Hello there" by the fake provider (priced by genai-prices as usual)."""
    fake_provider.answer_every_call(*HELLO_THERE)
    return fake_provider


def rows() -> list[LedgerRecord]:
    with UsageLedger() as ledger:
        return list(ledger.records()) if ledger.exists() else []


def test_a_local_generate_is_recorded_exactly(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    folder = str(tiny_models["llama"])
    result = run_llmctl("generate", "-m", folder, "Hello", "--max-tokens", "4", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    (row,) = rows()
    assert (row.command, row.provider, row.model, row.status) == ("generate", "hf", folder, "ok")
    assert row.input_tokens == answer["usage"]["input_tokens"] and row.output_tokens == 4
    assert row.total_tokens == row.input_tokens + 4 and row.token_source == "exact"
    assert (row.cost_usd, row.price_source) == (0.0, "local")
    assert answer["cost_usd"] == 0.0
    assert row.total_s is not None and row.first_token_s is not None and row.total_s >= row.first_token_s
    assert row.prompt_text == "Hello" and row.error is None  # text is kept by default, for `llmctl logs`


def test_usage_line_shows_the_cost(run_llmctl: Run, scripted: FakeBackend) -> None:
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi", "-u")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello there\n"
    expected = 1000 * GPT_IN + 500 * GPT_OUT
    assert f"cost ${expected:.6f}" in result.stderr
    (row,) = rows()
    assert row.cost_usd == pytest.approx(expected) and row.price_source == "genai-prices"


def test_an_unknown_price_says_how_to_set_one(run_llmctl: Run, scripted: FakeBackend) -> None:
    result = run_llmctl("generate", "-m", "openai/some-private-model", "Hi", "-u")
    assert result.exit_code == 0, result.stderr
    assert "cost unknown (set input_price_per_mtok and output_price_per_mtok" in result.stderr
    (row,) = rows()
    assert row.cost_usd is None and row.input_tokens == 1000


def test_a_failed_call_is_recorded_with_what_it_used(run_llmctl: Run, scripted: FakeBackend) -> None:
    scripted.enqueue(*HELLO_THERE[:3], ProviderError("the server hung up"))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 1 and "the server hung up" in result.stderr
    assert "Hello there" in result.stdout
    (row,) = rows()
    assert (row.status, row.error) == ("error", "the server hung up")
    assert (row.input_tokens, row.output_tokens) == (1000, 2)  # output counted from the deltas
    assert row.cost_usd == pytest.approx(1000 * GPT_IN + 2 * GPT_OUT)


def test_an_interrupted_call_is_recorded(run_llmctl: Run, scripted: FakeBackend) -> None:
    scripted.enqueue(*HELLO_THERE[:2], KeyboardInterrupt())
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 130
    (row,) = rows()
    assert (row.status, row.input_tokens, row.output_tokens) == ("interrupted", 1000, 1)


def test_a_model_that_fails_to_load_is_an_error_row_not_an_ok_one(run_llmctl: Run, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    result = run_llmctl("generate", "-m", str(broken), "Hi")
    assert result.exit_code != 0
    (row,) = rows()
    assert row.status == "error" and row.error


def test_store_text_keeps_the_prompt(run_llmctl: Run, scripted: FakeBackend, config_file: Path) -> None:
    config_file.write_text("[usage]\nstore_text = true\n")
    assert run_llmctl("generate", "-m", "openai/gpt-4o-mini", "my question").exit_code == 0
    (row,) = rows()
    assert (row.prompt_text, row.response_text) == ("my question", "Hello there")


def test_an_unwritable_ledger_warns_but_the_answer_stands(
    run_llmctl: Run, scripted: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LLMCTL_HOME", str(blocker / "home"))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 0
    assert result.stdout == "Hello there\n"
    assert "Warning: Usage not recorded" in result.stderr


def test_a_locked_ledger_warns_but_the_answer_stands(
    run_llmctl: Run, scripted: FakeBackend, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from llmctl.services.usage import ledger as usage_ledger

    with UsageLedger() as ledger:
        ledger.record(LedgerRecord(ts=1.0, command="x", provider="p", model="m", status="ok", token_source="unknown"))
    monkeypatch.setattr(usage_ledger, "BUSY_TIMEOUT_S", 0.2)  # rather than wait the real 30 s
    holder = sqlite3.connect(isolated_home / "usage.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 0 and result.stdout == "Hello there\n"
    assert "Usage not recorded" in result.stderr and "locked" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only directory")
def test_a_read_only_home_warns_but_the_answer_stands(
    run_llmctl: Run, scripted: FakeBackend, isolated_home: Path
) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    isolated_home.chmod(0o500)
    try:
        result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    finally:
        isolated_home.chmod(0o700)
    assert result.exit_code == 0 and result.stdout == "Hello there\n"
    assert "Usage not recorded" in result.stderr


def test_each_chat_turn_is_a_row_of_the_same_conversation(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), "--max-tokens", "3", stdin=b"Hi\nHow are you?\n")
    assert result.exit_code == 0, result.stderr
    turns = rows()
    assert [(r.command, r.status, r.output_tokens) for r in turns] == [("chat", "ok", 3), ("chat", "ok", 3)]
    assert turns[0].conversation_id is not None and turns[0].conversation_id == turns[1].conversation_id
    assert turns[1].input_tokens is not None and turns[0].input_tokens is not None
    assert turns[1].input_tokens > turns[0].input_tokens  # the second turn carries the history


# -- budgets ------------------------------------------------------------------------------------


def spent(usd: float) -> None:
    with UsageLedger() as ledger:
        ledger.record(
            LedgerRecord(
                ts=time.time() - 60,
                command="generate",
                provider="openai",
                model="gpt-4o-mini",
                status="ok",
                token_source="provider",
                cost_usd=usd,
            )
        )


def test_a_spent_budget_refuses_the_call_before_it_is_made(
    run_llmctl: Run, scripted: FakeBackend, config_file: Path
) -> None:
    config_file.write_text("[budget]\ndaily_usd = 1.0\n")
    spent(1.25)
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 2
    assert "daily budget of $1.00 is spent: $1.25 spent today" in result.stderr
    assert "--ignore-budget" in result.stderr
    assert scripted.calls == 0 and len(rows()) == 1


def test_ignore_budget_overrides_it_once(run_llmctl: Run, scripted: FakeBackend, config_file: Path) -> None:
    config_file.write_text("[budget.providers.openai]\nmonthly_usd = 1.0\n")
    spent(1.25)
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi", "--ignore-budget")
    assert result.exit_code == 0 and result.stdout == "Hello there\n"
    assert "Ignoring the monthly budget for openai" in result.stderr
    assert len(rows()) == 2
    assert run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi").exit_code == 2


def test_past_80_percent_of_a_budget_warns(run_llmctl: Run, scripted: FakeBackend, config_file: Path) -> None:
    config_file.write_text("[budget]\ndaily_usd = 1.0\n")
    spent(0.85)
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 0
    assert "85% of the daily budget used: $0.8500 of $1.00 spent today" in result.stderr


# -- real processes -----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_real_generate_processes_and_writers_at_once_lose_no_row(tiny_models: dict[str, Path]) -> None:
    rows_each = 20
    generate = [sys.executable, "-m", "llmctl", "generate", "-m", str(tiny_models["llama"]), "Hi", "--max-tokens", "3"]
    procs = [subprocess.Popen(generate, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
    procs += [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(n), str(rows_each)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(7)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        assert b"not recorded" not in err
    recorded = rows()
    assert len(recorded) == 7 * rows_each + 1
    assert sum(r.command == "generate" for r in recorded) == 1


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model with a long context so a reply runs long enough to interrupt."""
    return build_tiny_model("llama", tmp_path_factory.mktemp("slow") / "llama", context=8192, never_stops=True)


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_ctrl_c_in_a_real_process_records_an_interrupted_row(slow_model: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmctl", "generate", "-m", str(slow_model), "Hi", "--max-tokens", "8000"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None
    proc.stdout.read(1)  # the answer has started streaming
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    (row,) = rows()
    assert row.status == "interrupted"
    assert row.output_tokens is not None and 0 < row.output_tokens < 8000
