"""``generate -c`` / ``--conversation ID``: one-shot messages that go on from a saved conversation."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from llmctl.services.usage.ledger import UsageLedger
from tests.conftest import CliResult
from tests.wire.openai_server import OpenAIServer, Reply

Run = Callable[..., CliResult]
MODEL = "openai/gpt-4o-mini"


def _sent(server: OpenAIServer) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in server.requests[-1].json["messages"]]


def _conversations(run_llmctl: Run) -> list[dict[str, object]]:
    result = run_llmctl("chat", "--list", "--json")
    assert result.exit_code == 0, result.stderr
    listed: list[dict[str, object]] = json.loads(result.stdout)
    return listed


def test_continue_sends_the_earlier_exchange_and_saves_the_turn(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text="Bonjour means hello."), Reply(text="In Spanish: hola."))
    assert run_llmctl("generate", "-m", MODEL, "-s", "Be brief.", "What does bonjour mean?").exit_code == 0
    result = run_llmctl("generate", "-c", "And in Spanish?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "In Spanish: hola.\n"
    assert _sent(oai) == [
        ("system", "Be brief."),
        ("user", "What does bonjour mean?"),
        ("assistant", "Bonjour means hello."),
        ("user", "And in Spanish?"),
    ]
    (conversation,) = _conversations(run_llmctl)
    assert conversation["turns"] == 2
    with UsageLedger() as ledger:
        rows = list(ledger.records())
    assert [row.command for row in rows] == ["generate", "generate"]
    assert rows[0].conversation_id == rows[1].conversation_id == conversation["id"]


def test_a_chat_can_be_continued_from_generate_and_the_other_way(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text="Paris."), Reply(text="Rome."), Reply(text="Madrid."))
    assert run_llmctl("chat", "-m", MODEL, stdin=b"Capital of France?\n").exit_code == 0
    assert run_llmctl("generate", "-c", "Of Italy?").stdout == "Rome.\n"
    assert run_llmctl("chat", "--continue", stdin=b"Of Spain?\n").stdout == "Madrid.\n"
    asked = [content for role, content in _sent(oai) if role == "user"]
    assert asked == ["Capital of France?", "Of Italy?", "Of Spain?"]


def test_conversation_id_picks_one_by_a_unique_start(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text="first"), Reply(text="second"), Reply(text="again"))
    run_llmctl("generate", "-m", MODEL, "one")
    run_llmctl("generate", "-m", MODEL, "two")
    older = next(c for c in _conversations(run_llmctl) if c["title"] == "one")
    result = run_llmctl("generate", "--conversation", str(older["id"])[:-1], "more")  # a unique start is enough
    assert result.exit_code == 0, result.stderr
    assert _sent(oai)[:2] == [("user", "one"), ("assistant", "first")]


def test_no_save_keeps_a_call_out_of_the_store(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text="kept"), Reply(text="private"), Reply(text="next"))
    run_llmctl("generate", "-m", MODEL, "keep me")
    assert run_llmctl("generate", "-m", MODEL, "--no-save", "secret").exit_code == 0
    assert len(_conversations(run_llmctl)) == 1
    run_llmctl("generate", "-c", "go on")
    assert ("user", "secret") not in _sent(oai) and ("user", "keep me") in _sent(oai)


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["-c", "hi"], "no saved conversation"),
        (["--conversation", "nope", "hi"], "nope"),
        (["-c", "--conversation", "x", "hi"], "not both"),
    ],
)
def test_nothing_to_continue_is_a_usage_error(run_llmctl: Run, oai: OpenAIServer, args: list[str], phrase: str) -> None:
    result = run_llmctl("generate", *args)
    assert result.exit_code == 2, result.stderr
    assert phrase.lower() in result.stderr.lower() and "Traceback" not in result.stderr
    assert not oai.requests
