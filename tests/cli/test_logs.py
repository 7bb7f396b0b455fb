"""``llmctl logs``: past calls with prompts and answers, filters, full-text search, ``-r``, ``on``/``off``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.wire.openai_server import OpenAIServer, Reply

Run = Callable[..., CliResult]


@pytest.fixture
def oai(oai: OpenAIServer, config_file: Path) -> OpenAIServer:
    """The shared server, with ``gpt`` an alias of its gpt-4o."""
    config_file.write_text(config_file.read_text() + '\n[models.gpt]\nprovider = "openai"\nid = "gpt-4o"\n')
    return oai


def _ask(run_llmctl: Run, server: OpenAIServer, model: str, prompt: str, answer: str) -> None:
    server.add(Reply(text=answer))
    result = run_llmctl("generate", "-m", model, prompt)
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def three_calls(run_llmctl: Run, oai: OpenAIServer) -> None:
    _ask(run_llmctl, oai, "openai/gpt-4o-mini", "What is the capital of France?", "Paris is the capital.")
    _ask(run_llmctl, oai, "gpt", "Name a prime number.", "Seven is prime.")
    _ask(run_llmctl, oai, "openai/gpt-4o-mini", "And of Spain?", "Madrid.")


def test_logs_show_the_newest_calls_with_prompt_and_answer(run_llmctl: Run, three_calls: None) -> None:
    result = run_llmctl("logs", "-n", "2")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Name a prime number." in out and "Seven is prime." in out and "And of Spain?" in out
    assert "capital of France" not in out  # the oldest, beyond -n 2
    assert out.index("Seven is prime.") < out.index("Madrid.")  # the newest last, like a transcript
    assert "openai/gpt-4o-mini · generate" in out


@pytest.mark.parametrize(
    ("args", "prompts"),
    [
        (["-q", "capital"], ["What is the capital of France?"]),
        (["-q", "prime SEVEN"], ["Name a prime number."]),  # every word, any case, prompt or answer
        (["-q", "Madrid"], ["And of Spain?"]),
        (["-q", 'AND "OR" NEAR('], []),  # FTS syntax in the user's text is just text
        (["-m", "gpt"], ["Name a prime number."]),  # an alias finds calls to its target
        (["-m", "openai/gpt-4o-mini", "-n", "0"], ["And of Spain?", "What is the capital of France?"]),
        (["--since", "1h", "-n", "0"], ["And of Spain?", "Name a prime number.", "What is the capital of France?"]),
    ],
)
def test_filters_and_search(run_llmctl: Run, three_calls: None, args: list[str], prompts: list[str]) -> None:
    result = run_llmctl("logs", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert [call["prompt_text"] for call in json.loads(result.stdout)] == prompts


def test_response_prints_the_last_answer_alone(run_llmctl: Run, three_calls: None) -> None:
    result = run_llmctl("logs", "-r")
    assert (result.exit_code, result.stdout) == (0, "Madrid.\n")
    assert run_llmctl("logs", "-r", "-q", "prime").stdout == "Seven is prime.\n"


def test_off_keeps_counts_but_no_text_and_logs_say_so(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    assert run_llmctl("logs", "status").stdout.startswith("on")
    assert run_llmctl("logs", "off").exit_code == 0
    assert "store_text = false" in config_file.read_text()
    _ask(run_llmctl, oai, "openai/gpt-4o-mini", "private question", "private answer")
    result = run_llmctl("logs")
    assert "private" not in result.stdout and "text not stored" in result.stdout
    (call,) = json.loads(run_llmctl("logs", "--json").stdout)
    assert call["text_stored"] is False and call["input_tokens"] is not None
    rerun = run_llmctl("logs", "-r")
    assert rerun.exit_code == 1 and "not stored" in rerun.stderr
    assert run_llmctl("logs", "on").exit_code == 0
    assert run_llmctl("logs", "status").stdout.startswith("on")


def test_no_calls_yet(run_llmctl: Run) -> None:
    result = run_llmctl("logs")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "No calls recorded yet." in result.stderr


def test_an_older_ledger_without_the_text_index_is_searched_in_place(
    run_llmctl: Run, three_calls: None, isolated_home: Path
) -> None:
    """A ledger from before the full-text index: read (not upgraded) and searched by substring."""
    path = isolated_home / "usage.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("DROP TRIGGER calls_text_insert; DROP TRIGGER calls_text_delete; DROP TABLE calls_text;")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    result = run_llmctl("logs", "-q", "Madrid", "--json")
    assert result.exit_code == 0, result.stderr
    assert [call["response_text"] for call in json.loads(result.stdout)] == ["Madrid."]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


def test_the_index_covers_text_stored_before_it_existed(tmp_path: Path) -> None:
    from llmctl.services.usage.ledger import UsageLedger
    from llmctl.services.usage.schema import MIGRATIONS, statements

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:2]:
        for statement in statements(script):
            conn.execute(statement)
    conn.execute(
        "INSERT INTO calls (ts, command, provider, model, status, token_source, prompt_text, response_text) "
        "VALUES (1, 'generate', 'openai', 'gpt-4o', 'ok', 'provider', 'old prompt', 'ancient answer')"
    )
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with UsageLedger(path) as ledger:
        assert ledger.schema_version() == len(MIGRATIONS)
        assert ledger.query("SELECT rowid FROM calls_text WHERE calls_text MATCH 'ancient'") == [(1,)]


@pytest.mark.slow
def test_the_demo_is_recorded_as_llmctl_demo_and_found_by_its_alias(run_llmctl: Run) -> None:
    """Not as its folder inside the installed package, which moves with every install."""
    assert run_llmctl("generate", "What is the capital of France?").exit_code == 0
    (call,) = json.loads(run_llmctl("logs", "-m", "demo", "--json").stdout)
    assert (call["provider"], call["model"]) == ("hf", "llmctl/demo")
    usage = json.loads(run_llmctl("usage", "--model", "demo", "--json").stdout)
    assert usage["totals"]["calls"] == 1
