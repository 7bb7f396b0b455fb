"""Local models through the server: tiny Llama/Mistral/Gemma, parallel clients, keep-alive, ps and stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from tests.server.harness import ServeProcess, start_serve

FAMILIES = ("llama", "mistral", "gemma")


@pytest.fixture(scope="module")
def family_server(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("serve-families")
    config = root / "config.toml"
    aliases = "".join(
        f'[models.tiny-{family}]\nprovider = "hf"\npath = "{tiny_models[family]}"\n' for family in FAMILIES
    )
    config.write_text("[defaults]\ntemperature = 0.0\n" + aliases)
    served = start_serve(root / "home", config)
    yield served
    served.terminate()


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_answers_with_exact_counts(family_server: ServeProcess, family: str) -> None:
    client = openai.OpenAI(base_url=family_server.base_url, api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model=f"tiny-{family}",
        messages=[{"role": "user", "content": "Hello there"}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 5
    rows = [r for r in family_server.ledger_rows() if r["model"].endswith(family)]
    assert rows and rows[-1]["token_source"] == "exact" and rows[-1]["output_tokens"] == usage.completion_tokens


def _ask(url: str, prompt: str) -> str:
    body = {"model": "demo", "messages": [{"role": "user", "content": prompt}], "max_tokens": 16, "stream": True}
    text = []
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                choices = json.loads(line[6:])["choices"]
                text.append(choices[0]["delta"].get("content") or "" if choices else "")
    return "".join(text)


def test_parallel_streams_to_one_model_all_complete_unmixed_and_each_recorded(demo_server: ServeProcess) -> None:
    prompts = ["What is the capital of France?", "What is two plus two?", "Hello!", "What is llmctl?"] * 2
    alone = {prompt: _ask(demo_server.url, prompt) for prompt in set(prompts)}  # one at a time, greedy
    before = len(demo_server.ledger_rows())
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(lambda p: _ask(demo_server.url, p), prompts))
    assert together == [alone[p] for p in prompts]  # every stream got its own answer, whole, nothing of another's
    rows = demo_server.wait_for_rows(before + len(prompts))[before:]
    assert len(rows) == len(prompts) and {r["status"] for r in rows} == {"ok"}
    assert sorted(r["prompt_text"] for r in rows) == sorted(prompts)


def _llmctl(served: ServeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLMCTL_HOME": str(served.home), "LLMCTL_CONFIG": str(served.home.parent / "config.toml")}
    return subprocess.run([sys.executable, "-m", "llmctl", *args], env=env, capture_output=True, text=True, timeout=60)


def test_ps_shows_the_loaded_model_and_stop_unloads_it(demo_server: ServeProcess) -> None:
    listed = _llmctl(demo_server, "ps", "--json")
    assert listed.returncode == 0, listed.stderr
    models = json.loads(listed.stdout)["models"]
    assert [m["model"] for m in models] == ["demo"]
    assert models[0]["device"] == "cpu" and models[0]["dtype"] == "float32" and models[0]["memory_bytes"] > 0
    table = _llmctl(demo_server, "ps")
    assert table.stdout.splitlines()[0].split("\t") == ["model", "device", "dtype", "memory", "until"]
    stopped = _llmctl(demo_server, "stop", "demo")
    assert stopped.returncode == 0 and "Unloaded demo" in stopped.stderr
    assert json.loads(_llmctl(demo_server, "ps", "--json").stdout)["models"] == []
    again = _llmctl(demo_server, "stop", "demo")
    assert again.returncode == 2 and "not loaded" in again.stderr
    _ask(demo_server.url, "Hello!")  # loads again on the next request
    assert [m["model"] for m in httpx.get(demo_server.url + "/status").json()["models"]] == ["demo"]


def test_keep_alive_zero_in_a_request_unloads_after_it(demo_server: ServeProcess) -> None:
    body = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "keep_alive": 0}
    assert httpx.post(demo_server.url + "/v1/chat/completions", json=body, timeout=300).status_code == 200
    assert httpx.get(demo_server.url + "/status").json()["models"] == []


def test_ps_without_a_server_says_how_to_start_one(tmp_path: Path) -> None:
    env = {**os.environ, "LLMCTL_HOME": str(tmp_path / "home"), "LLMCTL_CONFIG": str(tmp_path / "none.toml")}
    result = subprocess.run([sys.executable, "-m", "llmctl", "ps"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "llmctl serve" in result.stderr and "Traceback" not in result.stderr
