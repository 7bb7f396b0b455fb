"""``generate`` on a local model uses a running server when there is one, and shows and records the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.server.harness import ServeProcess

PROMPT = "What is the capital of France?"


def _generate(home: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMCTL_HOME": str(home), "LLMCTL_CONFIG": str(config)}
    command = [sys.executable, "-m", "llmctl", "generate", "--temperature", "0", "--max-tokens", "12", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _loaded(served: ServeProcess) -> list[str]:
    return [m["model"] for m in httpx.get(served.url + "/status", timeout=30).json()["models"]]


def test_generate_goes_through_the_server_with_the_same_output_and_one_row(demo_server: ServeProcess) -> None:
    config = demo_server.home.parent / "config.toml"
    httpx.post(demo_server.url + "/llmctl/v1/stop", json={"model": "demo"}, timeout=30)
    assert _loaded(demo_server) == []
    before = len(demo_server.ledger_rows())
    attached = _generate(demo_server.home, config, PROMPT, "-u")
    assert _loaded(demo_server) == ["demo"]  # the server loaded it: the call went there
    alone = _generate(demo_server.home, config, PROMPT, "-u", "--no-server")
    assert attached.returncode == alone.returncode == 0, attached.stderr + alone.stderr
    assert attached.stdout == alone.stdout and attached.stdout.strip()
    assert attached.stderr == alone.stderr and "(exact)" in attached.stderr
    rows = demo_server.ledger_rows()[before:]
    assert [(r["command"], r["model"], r["status"]) for r in rows] == [("generate", "llmctl/demo", "ok")] * 2
    assert rows[0]["output_tokens"] == rows[1]["output_tokens"] and rows[0]["conversation_id"]


def test_a_failure_on_the_server_is_the_same_error_and_exit_code(demo_server: ServeProcess) -> None:
    config = demo_server.home.parent / "config.toml"
    too_long = "word " * 3000  # the demo's window is 1,024 tokens
    attached = _generate(demo_server.home, config, too_long)
    alone = _generate(demo_server.home, config, too_long, "--no-server")
    assert attached.returncode == alone.returncode == 2
    assert attached.stderr == alone.stderr and "context window" in attached.stderr


def test_json_output_is_the_same_through_the_server(demo_server: ServeProcess) -> None:
    config = demo_server.home.parent / "config.toml"
    attached = json.loads(_generate(demo_server.home, config, PROMPT, "--json").stdout)
    alone = json.loads(_generate(demo_server.home, config, PROMPT, "--json", "--no-server").stdout)
    for result in (attached, alone):
        del result["timing"]
    assert attached == alone


def test_a_stale_server_file_falls_back_in_process_silently(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config.toml"
    config.write_text("")
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        free_port = unused.getsockname()[1]
    for pid in (2**22 + 12345, os.getpid()):  # a dead process; a live one with nothing listening at the URL
        (home / "server.json").write_text(json.dumps({"url": f"http://127.0.0.1:{free_port}", "pid": pid}))
        result = _generate(home, config, PROMPT)
        assert result.returncode == 0 and result.stdout.strip() and result.stderr == "", result.stderr


def test_piped_chat_goes_through_the_server_with_the_same_replies(demo_server: ServeProcess) -> None:
    config = demo_server.home.parent / "config.toml"
    env = {**os.environ, "LLMCTL_HOME": str(demo_server.home), "LLMCTL_CONFIG": str(config)}
    turns = "What is the capital of France?\nWhat is two plus two?\n"

    def chat(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "llmctl", "chat", "-m", "demo", "--temperature", "0", "--max-tokens", "12"]
        return subprocess.run([*command, *args], input=turns, env=env, capture_output=True, text=True, timeout=300)

    httpx.post(demo_server.url + "/llmctl/v1/stop", json={"model": "demo"}, timeout=30)
    before = len(demo_server.ledger_rows())
    attached = chat()
    assert _loaded(demo_server) == ["demo"]
    alone = chat("--no-server")
    assert attached.returncode == alone.returncode == 0, attached.stderr + alone.stderr
    assert attached.stdout == alone.stdout and attached.stdout.strip()
    rows = demo_server.ledger_rows()[before:]
    assert [r["command"] for r in rows] == ["chat"] * 4
    assert [r["input_tokens"] for r in rows[:2]] == [r["input_tokens"] for r in rows[2:]]
