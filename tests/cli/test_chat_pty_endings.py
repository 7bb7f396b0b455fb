"""``llmctl chat`` in a real terminal, ended by SIGTERM/SIGHUP (mid-reply or at the prompt), and --no-save."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from llmctl.services.usage.ledger import UsageLedger
from tests.cli.test_chat_pty import _clean, _say, _spawn, chat_env

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.slow
__all__ = ["chat_env"]  # the fixture, imported for the tests below

ENDINGS = [pytest.param(signal.SIGTERM, 143, id="SIGTERM"), pytest.param(signal.SIGHUP, 129, id="SIGHUP")]


@pytest.mark.parametrize(("signum", "code"), ENDINGS)
def test_a_signal_mid_reply_keeps_and_records_the_turn(
    chat_env: dict[str, str], isolated_home: Path, signum: int, code: int
) -> None:
    child = _spawn(chat_env, "-m", "long", "--max-tokens", "100000", "--temperature", "1")
    child.sendline("Tell me a long story")
    time.sleep(1.5)  # the reply is streaming
    child.kill(signum)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == code, _clean(child.before or "")
    assert "Traceback" not in _clean(child.before or "")
    with UsageLedger() as ledger:
        (row,) = ledger.records()
    assert row.status == "interrupted" and (row.output_tokens or 0) > 0
    (saved,) = (isolated_home / "conversations").glob("*.json")
    (turn,) = json.loads(saved.read_text())["turns"]
    assert turn["status"] == "interrupted" and turn["reply"]


@pytest.mark.parametrize(("signum", "code"), ENDINGS)
def test_a_signal_at_the_prompt_ends_the_chat(chat_env: dict[str, str], signum: int, code: int) -> None:
    child = _spawn(chat_env, "-m", "short", "--max-tokens", "4")
    _say(child, "Hello")
    child.kill(signum)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == code
    assert "Traceback" not in _clean(child.before or "")


def test_no_save_in_a_terminal_leaves_no_history_and_no_conversation(
    chat_env: dict[str, str], isolated_home: Path
) -> None:
    child = _spawn(chat_env, "-m", "short", "--max-tokens", "4", "--no-save")
    _say(child, "my private words")
    child.sendline("/usage")
    child.expect(r"(\d+) turn")
    child.expect_exact(">>>")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not (isolated_home / "chat_history").exists()
    assert not list(isolated_home.glob("conversations/*.json"))


@pytest.mark.parametrize(("signum", "code"), ENDINGS)
def test_a_signal_while_the_input_history_loads_ends_the_chat_cleanly(
    chat_env: dict[str, str], isolated_home: Path, signum: int, code: int
) -> None:
    """prompt_toolkit loads the history inside its event loop; a signal then must not print its traceback."""
    isolated_home.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"\n# 2025-01-01 00:00:{i % 60:02d}.000000\n+message number {i}\n" for i in range(60_000))
    (isolated_home / "chat_history").write_text(lines)
    child = _spawn(chat_env, "-m", "short", "--max-tokens", "4")  # returns as soon as the prompt shows
    child.kill(signum)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == code
    text = _clean(child.before or "")
    assert "Traceback" not in text and "Unhandled exception" not in text
