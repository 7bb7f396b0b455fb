"""``llmctl chat``: --no-save leaves nothing on disk, damaged files do not stop --continue, /usage is safe."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from llmctl.services.usage.ledger import UsageLedger
from tests.conftest import CliResult

Run = Callable[..., CliResult]
GREEDY = ("--temperature", "0", "--max-tokens", "4")


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_no_save_leaves_no_conversation_and_no_text_on_disk(
    run_llmctl: Run, tiny_models: dict[str, Path], isolated_home: Path, config_file: Path
) -> None:
    config_file.write_text("[usage]\nstore_text = true\n")
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, "--no-save", stdin=b"my secret\n")
    assert result.exit_code == 0, result.stderr
    assert files_under(isolated_home) <= {"usage.sqlite3", "usage.sqlite3-wal", "usage.sqlite3-shm"}
    with UsageLedger() as ledger:
        (row,) = ledger.records()
    assert row.command == "chat" and row.prompt_text is None and row.response_text is None  # counted, not kept


def test_no_save_keeps_the_input_history_in_memory_only(isolated_home: Path) -> None:
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    from llmctl.cli.chat.repl import _input_history, history_path

    assert isinstance(_input_history(remember=False), InMemoryHistory)
    assert not history_path().exists()
    assert isinstance(_input_history(remember=True), FileHistory)
    assert history_path().exists() and history_path().stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("first", ["/usage", "/help", "/system", "/model", "/save"])
def test_a_command_before_the_first_message_does_not_end_the_chat(
    run_llmctl: Run,
    tiny_models: dict[str, Path],
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # /save writes into the current folder
    stdin = f"{first}\nhello\n".encode()
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, "-s", "Be brief.", stdin=stdin)
    assert result.exit_code == 0, result.stderr
    assert "Unexpected" not in result.stderr
    (saved,) = (isolated_home / "conversations").glob("*.json")
    assert [t["user"] for t in json.loads(saved.read_text())["turns"]] == ["hello"]


def test_continue_says_which_damaged_newer_conversation_it_skipped(
    run_llmctl: Run, tiny_models: dict[str, Path], isolated_home: Path
) -> None:
    model = str(tiny_models["llama"])
    assert run_llmctl("chat", "-m", model, *GREEDY, stdin=b"the good one\n").exit_code == 0
    (good,) = (isolated_home / "conversations").glob("*.json")
    damaged = good.with_name("29991231-235959-dead.json")
    damaged.write_text('{"id": "x", "model": null, "turns": [null]}')
    os.utime(damaged, (good.stat().st_mtime + 60,) * 2)
    result = run_llmctl("chat", "--continue", *GREEDY, stdin=b"and more\n")
    assert result.exit_code == 0, result.stderr
    assert "Skipped 1 newer saved conversation(s) that cannot be read (29991231-235959-dead.json)" in result.stderr
    assert f"continuing {good.stem}" in result.stderr
    turns = json.loads(good.read_text())["turns"]
    assert [t["user"] for t in turns] == ["the good one", "and more"]
    listed = run_llmctl("chat", "--list", "--json")
    assert listed.exit_code == 0 and [c["id"] for c in json.loads(listed.stdout)] == [good.stem]


def test_a_conversation_that_cannot_be_saved_warns_and_the_chat_goes_on(
    run_llmctl: Run, tiny_models: dict[str, Path], isolated_home: Path
) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "conversations").write_text("a file where the folder should be")
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, stdin=b"one\ntwo\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("Conversation not saved") == 2
    assert len([line for line in result.stdout.splitlines() if line]) >= 2  # both replies came
    with UsageLedger() as ledger:
        assert [r.status for r in ledger.records()] == ["ok", "ok"]


def test_the_status_line_never_shows_zero_for_an_unknown_cost() -> None:
    from llmctl.cli.chat.commands import status_cost
    from llmctl.services.chat.conversation import Turn, usage_totals

    free = Turn("a", "b", "hf/local", cost_usd=0.0)
    unpriced = Turn("c", "d", "openai/private", cost_usd=None)
    assert status_cost(usage_totals([unpriced])) == "cost unknown"
    assert status_cost(usage_totals([free, unpriced])) == "≥$0 (1 turn(s) of unknown cost)"
    assert status_cost(usage_totals([free])) == "$0"
