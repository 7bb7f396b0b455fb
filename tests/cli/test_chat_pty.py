"""``llmctl chat`` in a real pseudo-terminal, driven like a person at the keyboard (pexpect).

Two processes: the first chats, uses /usage and /reset, then quits with Ctrl-D;
the second resumes with --continue on a model that never stops talking, is
interrupted with Ctrl-C mid-reply, keeps going, and quits.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

PROMPT = ">>>"  # prompt_toolkit draws the space after it as a cursor move
STATUS = re.compile(r"(\d+) in \((\d+) reused, (\d+) new\), (\d+) out")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")

pytestmark = pytest.mark.slow


@pytest.fixture
def chat_env(tmp_path: Path, tiny_models: dict[str, Path], isolated_home: Path) -> dict[str, str]:
    """A config with two aliases: ``short`` (the tiny Llama) and ``long`` (the same weights, no EOS)."""
    long_folder = tmp_path / "long-llama"
    shutil.copytree(tiny_models["llama"], long_folder)
    generation_config = long_folder / "generation_config.json"
    data = json.loads(generation_config.read_text())
    data["eos_token_id"] = None  # generate() never stops early: a reply as long as max_tokens
    generation_config.write_text(json.dumps(data))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[models.short]\nprovider = "hf"\nid = "{tiny_models["llama"]}"\n\n'
        f'[models.long]\nprovider = "hf"\nid = "{long_folder}"\ncontext_window = 1000000\n'
    )
    env = dict(os.environ)
    env.update(
        {
            "LLMCTL_CONFIG": str(config),
            "LLMCTL_HOME": str(isolated_home),
            "PROMPT_TOOLKIT_NO_CPR": "1",
            "TERM": "xterm",
            "COLUMNS": "120",
            "LINES": "40",
        }
    )
    return env


def _spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "llmctl", "chat", *args],
        env=env,
        encoding="utf-8",
        codec_errors="replace",
        timeout=90,
        dimensions=(40, 120),
    )
    if os.environ.get("CHAT_PTY_LOG"):
        child.logfile_read = open(os.environ["CHAT_PTY_LOG"], "a")  # noqa: SIM115
    child.expect_exact(PROMPT)
    return child


def _clean(text: str) -> str:
    return ANSI.sub("", text)


def _say(child: pexpect.spawn, text: str) -> re.Match[str]:
    """Send a message; wait for its status line and the next prompt."""
    child.sendline(text)
    child.expect(STATUS)
    match = child.match
    child.expect_exact(PROMPT)
    return match


def test_chat_in_a_terminal(chat_env: dict[str, str], isolated_home: Path) -> None:
    child = _spawn(chat_env, "-m", "short", "--temperature", "0", "--max-tokens", "6")
    first = _say(child, "Hello there")
    assert int(first.group(2)) == 0  # nothing to reuse on the first turn
    second = _say(child, "What did I say?")
    assert int(second.group(2)) > 0  # the first exchange came from the KV cache
    assert int(second.group(3)) < int(second.group(1))

    child.sendline("/usage")
    child.expect(r"(\d+) turns")
    assert child.match.group(1) == "2"
    child.expect(r"input tokens:\s+([\d,]+)")
    assert int(child.match.group(1).replace(",", "")) == int(first.group(1)) + int(second.group(1))
    child.expect_exact(PROMPT)

    child.sendcontrol("c")  # Ctrl-C at an empty prompt: a hint, no traceback
    child.expect_exact("Ctrl-D or /exit to quit")
    child.expect_exact(PROMPT)

    child.sendline("/reset")
    child.expect(r"New conversation (\d{8}-\d{6}-[0-9a-f]{4})")
    new_id = child.match.group(1)
    child.expect_exact(PROMPT)
    _say(child, "Two plus two is")
    child.send("first line\x1b\r")  # Esc then Enter: a new line, not sent yet
    _say(child, "second line")
    for line in ('"""', "inside a block", "still inside", '"""'):
        child.send(line + "\r")
    child.expect(STATUS)
    child.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in _clean(child.before or "")

    history = (isolated_home / "chat_history").read_text()  # input history, kept for the next session
    assert "+Hello there" in history and "+/usage" in history
    assert (isolated_home / "chat_history").stat().st_mode & 0o777 == 0o600

    saved = sorted((isolated_home / "conversations").glob("*.json"))
    assert len(saved) == 2  # the first conversation and the one after /reset
    turns = json.loads((isolated_home / "conversations" / f"{new_id}.json").read_text())["turns"]
    assert [t["user"] for t in turns] == ["Two plus two is", "first line\nsecond line", "inside a block\nstill inside"]

    # --continue resumes the conversation used last, here on a model that would talk for ever.
    child = _spawn(chat_env, "--continue", "-m", "long", "--max-tokens", "100000", "--temperature", "1")
    recap = _clean(child.before or "")
    assert f"Continuing conversation {new_id} (3 turns" in recap
    assert "you> Two plus two is" in recap
    child.sendline("Tell me a long story")
    time.sleep(1.5)  # let the reply stream for a while (it would go on for 100,000 tokens)
    child.sendintr()
    child.expect_exact("[interrupted]")
    child.expect(r"(\d+) out · [\d.]+ s · interrupted")
    assert int(child.match.group(1)) > 0
    child.expect_exact(PROMPT)

    child.sendline("/usage")  # the REPL goes on; the interrupted turn is in the history
    child.expect(r"(\d+) turns")
    assert child.match.group(1) == "4"
    child.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in _clean(child.before or "")

    turns = json.loads((isolated_home / "conversations" / f"{new_id}.json").read_text())["turns"]
    assert [t["status"] for t in turns] == ["ok", "ok", "ok", "interrupted"]
    assert turns[3]["reply"] and turns[3]["usage"]["output_tokens"] > 0
    assert turns[3]["model"] == "long"
