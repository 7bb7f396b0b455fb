"""``llmctl chat`` with stdin that is not a terminal, run as a user runs it (the real entry point).

One message per line in, each reply out on stdout; conversations saved and
resumable; the history fitted to a tiny model's 256-token window.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmctl.services.usage.ledger import UsageLedger
from tests.conftest import CliResult

Run = Callable[..., CliResult]
GREEDY = ("--temperature", "0", "--max-tokens", "6")


def _conversations(home: Path) -> list[dict[str, Any]]:
    folder = home / "conversations"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def test_one_message_per_line_replies_on_stdout(
    run_llmctl: Run, tiny_models: dict[str, Path], isolated_home: Path
) -> None:
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, stdin=b"hi\n\nwhat did I say?\n")
    assert result.exit_code == 0, result.stderr
    [conversation] = _conversations(isolated_home)
    turns = conversation["turns"]
    assert [t["user"] for t in turns] == ["hi", "what did I say?"]  # the blank line is skipped
    expected = "".join(t["reply"] + ("" if t["reply"].endswith("\n") else "\n") for t in turns)
    assert result.stdout == expected  # only the replies, raw
    assert turns[1]["usage"]["cached_input_tokens"] > 0  # the first exchange was reused from the KV cache
    assert turns[1]["usage"]["input_tokens"] > turns[0]["usage"]["input_tokens"]  # the history was sent

    with UsageLedger() as ledger:
        rows = list(ledger.records())
    assert [(r.command, r.status, r.conversation_id) for r in rows] == [("chat", "ok", conversation["id"])] * 2


def test_same_replies_without_kv_cache(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    messages = b"Hello there\nWhat is the capital of France?\nThank you\n"
    cached = run_llmctl("chat", "-m", str(tiny_models["mistral"]), *GREEDY, "--no-save", stdin=messages)
    fresh = run_llmctl("chat", "-m", str(tiny_models["mistral"]), *GREEDY, "--no-save", "--no-kv-cache", stdin=messages)
    assert cached.exit_code == fresh.exit_code == 0
    assert cached.stdout == fresh.stdout


def test_continue_and_conversation_id_resume_the_history(
    run_llmctl: Run, tiny_models: dict[str, Path], isolated_home: Path
) -> None:
    model = str(tiny_models["llama"])
    assert run_llmctl("chat", "-m", model, *GREEDY, stdin=b"first conversation\n").exit_code == 0
    assert run_llmctl("chat", "-m", model, *GREEDY, "-s", "Be kind.", stdin=b"second conversation\n").exit_code == 0
    first, second = sorted(_conversations(isolated_home), key=lambda c: c["turns"][0]["user"])

    # --continue: the one used last, with its model and system prompt.
    assert run_llmctl("chat", "--continue", *GREEDY, stdin=b"and more\n").exit_code == 0
    # --conversation: any one, by a unique start of its id.
    prefix = first["id"][: len(first["id"]) - 1]
    if prefix == second["id"][: len(prefix)]:
        prefix = first["id"]
    assert run_llmctl("chat", "--conversation", prefix, *GREEDY, stdin=b"back to the first\n").exit_code == 0

    by_id = {c["id"]: c for c in _conversations(isolated_home)}
    assert len(by_id) == 2
    resumed_second, resumed_first = by_id[second["id"]], by_id[first["id"]]
    assert [t["user"] for t in resumed_second["turns"]] == ["second conversation", "and more"]
    assert resumed_second["system"] == "Be kind."
    assert [t["user"] for t in resumed_first["turns"]] == ["first conversation", "back to the first"]
    # The resumed turn's prompt carried the earlier exchange.
    assert resumed_first["turns"][1]["usage"]["input_tokens"] > resumed_first["turns"][0]["usage"]["input_tokens"]


def test_list_shows_saved_conversations(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    model = str(tiny_models["llama"])
    assert run_llmctl("chat", "--list").stderr.startswith("No saved conversations")
    run_llmctl("chat", "-m", model, *GREEDY, stdin=b"The capital of France\nand then?\n")
    listed = run_llmctl("chat", "--list")
    assert listed.exit_code == 0
    assert "The capital of France" in listed.stdout and model in listed.stdout
    [entry] = json.loads(run_llmctl("chat", "--list", "--json").stdout)
    assert (entry["turns"], entry["title"], entry["model"]) == (2, "The capital of France", model)
    assert entry["id"] in listed.stdout


def test_resume_errors_are_explained(run_llmctl: Run) -> None:
    result = run_llmctl("chat", "--continue", stdin=b"hi\n")
    assert result.exit_code == 2 and "no saved conversation to continue" in result.stderr
    result = run_llmctl("chat", "--conversation", "20990101", stdin=b"hi\n")
    assert result.exit_code == 2 and "chat --list" in result.stderr


def test_history_is_fitted_to_the_context_window(
    run_llmctl: Run, tiny_models: dict[str, Path], isolated_home: Path
) -> None:
    line = "Quick zebras jump; vexing wizards box (42 times)."  # few merges in the tiny tokenizer: many tokens
    messages = "".join(f"{i}: {line}\n" for i in range(8)).encode()
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, "-s", "Answer briefly.", stdin=messages)
    assert result.exit_code == 0, result.stderr
    assert len(re.findall(r"no longer fits? in the context window", result.stderr)) == 1  # told once
    [conversation] = _conversations(isolated_home)
    turns = conversation["turns"]
    assert len(turns) == 8  # all kept in the saved conversation
    window, reply_room = 256, 6
    assert all(t["usage"]["input_tokens"] <= window - reply_room for t in turns)
    prompts = [t["usage"]["input_tokens"] for t in turns]
    assert any(later < earlier for earlier, later in itertools.pairwise(prompts))  # the window slid


def test_a_message_too_long_for_the_model_fails_with_exit_2(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, stdin=("word " * 400 + "\n").encode())
    assert result.exit_code == 2
    assert "context window of 256 tokens" in result.stderr
    assert "/model" in result.stderr  # inside chat the way out is a chat command, not -m


def test_commands_work_in_pipes_and_print_to_stderr(
    run_llmctl: Run, tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    script = b'/system Be terse.\nhello\n"""\nline one\nline two\n"""\n/retry\n/usage\n/save out.md\n/exit\nnot sent\n'
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, stdin=script)
    assert result.exit_code == 0, result.stderr
    assert "System prompt set" in result.stderr
    assert "2 turns" in result.stderr  # /retry replaced the second reply
    exported = (tmp_path / "out.md").read_text()
    assert "## System\n\nBe terse." in exported
    assert "## User\n\nline one\nline two\n" in exported
    assert "not sent" not in exported


def test_unknown_command_fails_in_a_pipe(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, stdin=b"/frobnicate\n")
    assert result.exit_code == 2
    assert "Unknown command /frobnicate" in result.stderr


def test_invalid_utf8_input_is_refused(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, stdin=b"caf\xe9\n")
    assert result.exit_code == 2
    assert "not valid UTF-8" in result.stderr


def test_hosted_model_gets_the_whole_history_each_turn(
    run_llmctl: Run, config_file: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.wire.openai_server import OpenAIServer, Reply

    key = "sk-test-chat-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with OpenAIServer(api_key=key) as server:
        config_file.write_text(
            f'[providers.openai]\nbase_url = "{server.base_url}"\nmax_retries = 0\ntimeout = 5\n'
            "input_price_per_mtok = 1.0\noutput_price_per_mtok = 2.0\n"
        )
        server.add(Reply(text="Hello! How can I help?", usage=(9, 6)), Reply(text="You said hi.", usage=(20, 4)))
        result = run_llmctl("chat", "-m", "openai/gpt-4o-mini", "-s", "Be brief.", stdin=b"hi\nwhat did I say?\n")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == "Hello! How can I help?\nYou said hi.\n"
        assert server.requests[-1].json["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "what did I say?"},
        ]
        assert not server.errors
    [conversation] = _conversations(isolated_home)
    assert [t["usage"]["input_tokens"] for t in conversation["turns"]] == [9, 20]
    costs = [t["cost_usd"] for t in conversation["turns"]]
    assert costs == pytest.approx([(9 * 1.0 + 6 * 2.0) / 1e6, (20 * 1.0 + 4 * 2.0) / 1e6])
    with UsageLedger() as ledger:
        assert sorted(r.cost_usd or 0 for r in ledger.records()) == pytest.approx(sorted(costs))


def test_model_switch_keeps_the_history(run_llmctl: Run, tiny_models: dict[str, Path], isolated_home: Path) -> None:
    script = f"hello there\n/model {tiny_models['mistral']}\nand now?\n".encode()
    result = run_llmctl("chat", "-m", str(tiny_models["llama"]), *GREEDY, stdin=script)
    assert result.exit_code == 0, result.stderr
    assert "the history is kept" in result.stderr
    [conversation] = _conversations(isolated_home)
    first, second = conversation["turns"]
    assert (first["model"], second["model"]) == (str(tiny_models["llama"]), str(tiny_models["mistral"]))
    assert conversation["model"] == str(tiny_models["mistral"])  # --continue resumes on the model used last
    assert second["usage"]["cached_input_tokens"] == 0  # a new model starts with an empty cache
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"]  # ...but gets the whole history


def test_input_helpers() -> None:
    import io

    from llmctl.cli.chat.commands import block_is_open, is_command, message_text
    from llmctl.cli.chat.repl import read_messages

    assert block_is_open('"""') and block_is_open('"""\nabc') and not block_is_open('"""\nabc\n"""')
    assert not block_is_open("plain text")
    assert message_text('"""\nline one\nline two\n"""') == "line one\nline two"
    assert message_text("//etc/hosts is a file") == "/etc/hosts is a file"
    assert is_command("/usage") and not is_command("//not a command") and not is_command("hi /usage")
    stream = io.BytesIO(b'one\n\n"""\na\n\nb\n"""\r\ntwo\r\n"""\nunclosed')
    assert list(read_messages(stream)) == ["one", '"""\na\n\nb\n"""', "two", '"""\nunclosed\n"""']
