"""A hosted model proxied through its adapter to a loopback fake vendor; budget, keys, disconnects, SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.server.harness import ServeProcess, start_serve
from tests.wire.openai_server import OpenAIServer, Reply

VENDOR_KEY = "sk-test-openai-0123456789"


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv("OPENAI_API_KEY", VENDOR_KEY)
    with OpenAIServer(api_key=VENDOR_KEY) as server:
        yield server


def _config(path: Path, vendor: OpenAIServer, extra: str = "") -> Path:
    path.write_text(
        f'[providers.openai]\nbase_url = "{vendor.base_url}"\ntimeout = 10\nmax_retries = 0\n'
        "input_price_per_mtok = 100000.0\noutput_price_per_mtok = 100000.0\n" + extra
    )
    return path


@pytest.fixture
def hosted_server(tmp_path: Path, vendor: OpenAIServer) -> Iterator[ServeProcess]:
    served = start_serve(tmp_path / "home", _config(tmp_path / "config.toml", vendor, "[budget]\ndaily_usd = 1.0\n"))
    yield served
    served.terminate()


def test_hosted_model_through_both_wires_is_priced_and_recorded(
    hosted_server: ServeProcess, vendor: OpenAIServer
) -> None:
    vendor.add(Reply(text="Paris is the capital.", usage=(3, 4)), Reply(text="Lyon is not.", usage=(2, 3)))
    oai = openai.OpenAI(base_url=hosted_server.base_url, api_key="unused", max_retries=0)
    answer = oai.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Capital?"}])
    assert answer.choices[0].message.content == "Paris is the capital."
    assert answer.usage is not None and (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (3, 4)
    # The Anthropic SDK, to an OpenAI-wire model: each wire is translated at the edge, once.
    ant = anthropic.Anthropic(base_url=hosted_server.url, api_key="unused", max_retries=0)
    with ant.messages.stream(
        model="openai/gpt-4o-mini", max_tokens=50, messages=[{"role": "user", "content": "And Lyon?"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Lyon is not."
        assert stream.get_final_message().usage.output_tokens == 3
    assert vendor.requests[0].json["model"] == "gpt-4o-mini"
    rows = hosted_server.wait_for_rows(2)
    assert [(r["provider"], r["model"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("openai", "gpt-4o-mini", 3, 4),
        ("openai", "gpt-4o-mini", 2, 3),
    ]
    assert rows[0]["cost_usd"] == pytest.approx(0.7)


def test_spent_budget_is_refused_in_each_vendors_shape_and_not_retried(
    hosted_server: ServeProcess, vendor: OpenAIServer
) -> None:
    vendor.add(Reply(text="Expensive.", usage=(10, 10)))  # 20 tokens at $0.1 each: $2 of a $1 daily budget
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(hosted_server.url + "/v1/chat/completions", json=body, timeout=30).status_code == 200
    calls_to_vendor = len(vendor.requests)
    oai = openai.OpenAI(base_url=hosted_server.base_url, api_key="unused", max_retries=3)
    with pytest.raises(openai.RateLimitError) as refused:
        oai.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "again"}])
    assert refused.value.code == "insufficient_quota" and "daily budget" in refused.value.message
    stream = httpx.post(hosted_server.url + "/v1/chat/completions", json={**body, "stream": True}, timeout=30)
    assert stream.status_code == 429 and stream.json()["error"]["type"] == "insufficient_quota"
    ant = httpx.post(hosted_server.url + "/v1/messages", json={**body, "max_tokens": 5}, timeout=30)
    assert ant.json()["error"]["type"] == "billing_error" and ant.headers["x-should-retry"] == "false"
    assert len(vendor.requests) == calls_to_vendor  # refused before any call, and the SDK did not retry
    assert len(hosted_server.ledger_rows()) == 1


def test_client_disconnect_stops_the_generation_and_is_recorded_interrupted(
    hosted_server: ServeProcess, vendor: OpenAIServer
) -> None:
    words = [f"word{i} " for i in range(200)]
    vendor.add(Reply(chunks=words, usage=(5, 200), chunk_delay_s=0.05))
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "long"}], "stream": True}
    with httpx.stream("POST", hosted_server.url + "/v1/chat/completions", json=body, timeout=30) as response:
        received = 0
        for line in response.iter_lines():
            received += line.startswith("data:")
            if received >= 4:
                break  # leaving the block closes the connection mid-answer
    rows = hosted_server.wait_for_rows(1)
    assert rows[0]["status"] == "interrupted"
    text = rows[0]["response_text"] or ""
    assert 0 < len(text) < len("".join(words))


def test_sigterm_drains_the_answer_in_flight_then_exits_143(hosted_server: ServeProcess, vendor: OpenAIServer) -> None:
    vendor.add(Reply(chunks=[f"w{i} " for i in range(20)], usage=(5, 20), chunk_delay_s=0.1))
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": True}
    collected: list[str] = []

    def read() -> None:
        with httpx.stream("POST", hosted_server.url + "/v1/chat/completions", json=body, timeout=60) as response:
            collected.extend(response.iter_lines())

    reader = threading.Thread(target=read)
    reader.start()
    while not any(line.startswith("data:") for line in list(collected)) and reader.is_alive():
        time.sleep(0.05)
    time.sleep(0.3)
    hosted_server.process.send_signal(signal.SIGTERM)
    reader.join(30)
    code, stderr = hosted_server.terminate()
    assert code == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert collected[-2:] == ["data: [DONE]", ""] or "data: [DONE]" in collected
    text = "".join(
        json.loads(line[5:])["choices"][0]["delta"].get("content", "")
        for line in collected
        if line.startswith("data: {") and json.loads(line[5:])["choices"]
    )
    assert text == "".join(f"w{i} " for i in range(20))
    rows = hosted_server.ledger_rows()
    assert [r["status"] for r in rows] == ["ok"]
    assert not (hosted_server.home / "server.json").exists()


def test_listening_off_loopback_needs_api_keys(tmp_path: Path, vendor: OpenAIServer) -> None:
    import subprocess
    import sys

    config = _config(tmp_path / "config.toml", vendor)
    result = subprocess.run(
        [sys.executable, "-m", "llmctl", "serve", "--host", "0.0.0.0", "--port", "0"],
        env={**__import__("os").environ, "LLMCTL_HOME": str(tmp_path / "home"), "LLMCTL_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "api_keys" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "server.json").exists()


def test_keys_are_required_and_name_the_client(tmp_path: Path, vendor: OpenAIServer) -> None:
    config = _config(tmp_path / "config.toml", vendor, '[server.api_keys]\nlaptop = "LAPTOP_KEY"\n')
    served = start_serve(tmp_path / "home", config, "--host", "0.0.0.0", env={"LAPTOP_KEY": "s3cret-laptop"})
    try:
        url = served.url.replace("0.0.0.0", "127.0.0.1")
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        for headers in ({}, {"authorization": "Bearer wrong"}, {"x-api-key": "s3cret-laptop-but-longer"}):
            refused = httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=30)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        refused = httpx.post(url + "/v1/messages", json={**body, "max_tokens": 4}, timeout=30)
        assert refused.json()["error"]["type"] == "authentication_error"
        assert httpx.get(url + "/health", timeout=30).status_code == 200
        ok = openai.OpenAI(base_url=url + "/v1", api_key="s3cret-laptop", max_retries=0)
        ok.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        via_header = httpx.post(
            url + "/v1/messages", json={**body, "max_tokens": 4}, headers={"x-api-key": "s3cret-laptop"}, timeout=30
        )
        assert via_header.status_code == 200
        assert [r["client"] for r in served.wait_for_rows(2)] == ["laptop", "laptop"]
    finally:
        served.terminate()


def test_a_client_that_hangs_up_on_a_whole_answer_stops_it_too(
    hosted_server: ServeProcess, vendor: OpenAIServer
) -> None:
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "long"}]}  # no stream
    vendor.add(Reply(text="warm", usage=(1, 1)))  # the first call imports the SDK: not what is timed here
    assert httpx.post(hosted_server.url + "/v1/chat/completions", json=body, timeout=60).status_code == 200
    vendor.add(Reply(chunks=[f"w{i} " for i in range(400)], usage=(5, 400), chunk_delay_s=0.05))  # 20 s of answer
    with pytest.raises(httpx.TimeoutException):
        httpx.post(hosted_server.url + "/v1/chat/completions", json=body, timeout=2.0)
    rows = hosted_server.wait_for_rows(2, timeout_s=12)  # well before the answer would have ended
    assert len(rows) == 2 and rows[1]["status"] == "interrupted"
    assert 0 < len(rows[1]["response_text"] or "") < len("".join(f"w{i} " for i in range(400)))
