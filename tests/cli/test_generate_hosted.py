"""``llmctl generate`` with hosted providers, as a user runs it: config file, environment, real HTTP."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.hosted_servers import ANTHROPIC_KEY, OPENAI_KEY
from tests.wire.anthropic_server import AnthropicServer
from tests.wire.openai_server import DropMidStream, Fault, OpenAIServer, Reply, Slow

Run = Callable[..., CliResult]


def set_provider(config_file: Path, **keys: Any) -> None:
    """Add keys to the config's only [providers.X] table."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    config_file.write_text(config_file.read_text() + "\n".join(lines) + "\n")


def data(result: CliResult) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


# -- OpenAI --------------------------------------------------------------------------------------------------------


def test_answer_goes_to_stdout_and_nothing_else(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text="Paris is the capital of France."))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Capital of France?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Paris is the capital of France.\n"
    assert result.stderr == ""


def test_json_usage_comes_from_the_provider(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(text="Paris.", usage=(14, 2), cached_tokens=4))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Capital?", "--json")
    assert result.exit_code == 0, result.stderr
    out = data(result)
    assert out["text"] == "Paris."
    assert out["provider"] == "openai" and out["status"] == "ok" and out["finish_reason"] == "stop"
    assert out["usage"] == {
        "input_tokens": 14,
        "output_tokens": 2,
        "total_tokens": 16,
        "source": "provider",
        "cached_input_tokens": 4,
    }


def test_usage_flag_prints_provider_counts(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(usage=(14, 2)))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Capital?", "-u")
    assert result.exit_code == 0, result.stderr
    assert "Tokens: 14 input, 2 output, 16 total (provider)" in result.stderr


def test_options_system_prompt_and_key_reach_the_server(run_llmctl: Run, oai: OpenAIServer) -> None:
    args = ("--temperature", "0.2", "--top-p", "0.5", "--max-tokens", "33", "--seed", "11", "-s", "Be terse.")
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi", *args)
    assert result.exit_code == 0, result.stderr
    request = oai.last_request
    assert request.bearer_token == OPENAI_KEY
    body = request.json
    assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.2, 0.5, 33, 11)


def test_config_defaults_are_sent_when_no_flags(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text("[defaults]\ntemperature = 0.4\nmax_tokens = 99\n\n" + config_file.read_text())
    assert run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi").exit_code == 0
    body = oai.last_request.json
    assert (body["temperature"], body["max_tokens"]) == (0.4, 99)


def test_piped_stdin_follows_the_argument(run_llmctl: Run, oai: OpenAIServer) -> None:
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Summarize:", stdin=b"line one\nline two\n")
    assert result.exit_code == 0, result.stderr
    assert oai.last_request.json["messages"][-1]["content"] == "Summarize:\n\nline one\nline two\n"


def test_alias_for_a_hosted_model(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + '\n[models.fast]\nprovider = "openai"\nid = "gpt-4.1-mini"\n')
    result = run_llmctl("generate", "-m", "fast", "Hi", "--json")
    assert result.exit_code == 0, result.stderr
    assert data(result)["model"] == "fast"
    assert oai.last_request.json["model"] == "gpt-4.1-mini"


def test_rejected_key_names_the_variable(run_llmctl: Run, oai: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-0000000000")
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 1
    assert "rejected the API key from $OPENAI_API_KEY" in result.stderr
    assert "sk-wrong-0000000000" not in result.stderr + result.stdout


def test_missing_key_names_variable_and_config_keys(run_llmctl: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")  # and no base_url: OpenAI itself, which needs one
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 1
    assert "No API key for provider 'openai': the environment variable OPENAI_API_KEY is empty." in result.stderr
    assert "providers.openai.api_key_env" in result.stderr and "providers.openai.api_key_cmd" in result.stderr


def test_gateway_that_wants_a_key_nobody_gave(
    run_llmctl: Run, oai: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")  # with a base_url the server may need no key, so one is not demanded
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 1
    assert "requires an API key, and none is configured for provider 'openai'" in result.stderr
    assert "Set OPENAI_API_KEY, or providers.openai.api_key_env" in result.stderr


def test_api_key_cmd(run_llmctl: Run, oai: OpenAIServer, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    set_provider(config_file, api_key_cmd=f"{shlex.quote(sys.executable)} -c \"print('{OPENAI_KEY}')\"")
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 0, result.stderr
    assert oai.last_request.bearer_token == OPENAI_KEY


def test_rate_limit_then_success(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text(config_file.read_text().replace("max_retries = 0", "max_retries = 2"))
    oai.add(Fault(429))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == Reply().text + "\n"
    assert len(oai.requests) == 2


def test_server_error_after_retries(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text(config_file.read_text().replace("max_retries = 0", "max_retries = 1"))
    oai.default = Fault(500)
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 1
    assert "had a server error (HTTP 500) (after 1 retry)" in result.stderr
    assert result.stderr.count("Error:") == 1
    assert len(oai.requests) == 2


def test_dropped_stream_keeps_partial_text_and_exits_1(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(DropMidStream(after_chunks=3))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 1
    assert result.stdout == "Paris is the \n"
    assert "broke off mid-answer" in result.stderr


def test_dropped_stream_in_json(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(DropMidStream(after_chunks=2))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi", "--json")
    assert result.exit_code == 1
    out = data(result)
    assert out["text"] == "Paris is " and out["status"] == "error" and out["finish_reason"] == "error"
    assert "broke off" in out["error"]
    assert out["usage"]["output_tokens"] is None


def test_timeout(run_llmctl: Run, oai: OpenAIServer, config_file: Path) -> None:
    config_file.write_text(config_file.read_text().replace("timeout = 5", "timeout = 0.3"))
    oai.add(Slow(5.0))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 1
    assert "did not answer within 0.3 s" in result.stderr and "providers.openai.timeout" in result.stderr


def test_server_without_usage_gives_nulls(run_llmctl: Run, oai: OpenAIServer) -> None:
    oai.add(Reply(usage=None))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi", "--json", "-u")
    assert result.exit_code == 0, result.stderr
    usage = data(result)["usage"]
    assert usage["input_tokens"] is None and usage["output_tokens"] is None and usage["total_tokens"] is None
    assert usage["source"] == "unknown"
    assert "Tokens: unknown input, unknown output, unknown total (unknown)" in result.stderr


def test_context_length_exceeded_is_exit_2(run_llmctl: Run, oai: OpenAIServer) -> None:
    from tests.wire.openai_server import ContextTooLong

    oai.add(ContextTooLong(prompt_tokens=130_000))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 2
    assert "The input is 130000 tokens but openai/gpt-4o-mini has a context window of 128000 tokens" in result.stderr


# -- a named OpenAI-compatible server (vLLM-style, no auth) ---------------------------------------------------------


def test_named_vllm_style_provider_without_auth(
    run_llmctl: Run, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)  # must not leak to another server
    with OpenAIServer(api_key=None, owned_by="vllm") as vllm:
        config_file.write_text(f'[providers.my-vllm]\nkind = "openai"\nbase_url = "{vllm.base_url}"\n')
        result = run_llmctl("generate", "-m", "my-vllm/meta-llama/Llama-3.1-8B-Instruct", "Hi", "--json")
    assert result.exit_code == 0, result.stderr
    out = data(result)
    assert out["provider"] == "my-vllm" and out["text"] == Reply().text and out["usage"]["source"] == "provider"
    request = vllm.last_request
    assert request.json["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert request.bearer_token == "not-needed"


# -- Anthropic -----------------------------------------------------------------------------------------------------


def test_anthropic_text_usage_and_system_placement(run_llmctl: Run, ant: AnthropicServer) -> None:
    from tests.wire.anthropic_server import Reply as AntReply

    ant.add(AntReply(text="Paris.", usage=(20, 3)))
    result = run_llmctl("generate", "-m", "anthropic/claude-sonnet-4-6", "Capital?", "-s", "Be brief.", "--json")
    assert result.exit_code == 0, result.stderr
    out = data(result)
    assert out["text"] == "Paris." and out["provider"] == "anthropic"
    assert out["usage"]["input_tokens"] == 20 and out["usage"]["output_tokens"] == 3
    assert out["usage"]["source"] == "provider"
    body = ant.last_request.json
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "Capital?"}]
    assert body["max_tokens"] == 4096  # nobody set one, and Anthropic requires one: the stated default
    assert ant.last_request.bearer_token == ANTHROPIC_KEY


def test_anthropic_warns_that_sampling_flags_are_ignored(run_llmctl: Run, ant: AnthropicServer) -> None:
    result = run_llmctl("generate", "-m", "anthropic/claude-sonnet-4-6", "Hi", "--temperature", "0.2", "--seed", "3")
    assert result.exit_code == 0, result.stderr
    assert "does not take --temperature, --seed; ignored." in result.stderr
    assert "temperature" not in ant.last_request.json
    quiet = run_llmctl("generate", "-m", "anthropic/claude-sonnet-4-6", "Hi")  # config defaults: no warning
    assert "ignored" not in quiet.stderr


def test_anthropic_rejected_key(run_llmctl: Run, ant: AnthropicServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-nope")
    result = run_llmctl("generate", "-m", "anthropic/claude-sonnet-4-6", "Hi")
    assert result.exit_code == 1
    assert "rejected the API key from $ANTHROPIC_API_KEY" in result.stderr


def test_anthropic_dropped_stream(run_llmctl: Run, ant: AnthropicServer) -> None:
    from tests.wire.anthropic_server import DropMidStream as AntDrop
    from tests.wire.anthropic_server import Reply as AntReply

    ant.add(AntDrop(after_chunks=2, reply=AntReply(usage=(25, 9))))
    result = run_llmctl("generate", "-m", "anthropic/claude-sonnet-4-6", "Hi", "--json")
    assert result.exit_code == 1
    out = data(result)
    assert out["text"] == "Paris is " and out["status"] == "error"
    assert out["usage"]["input_tokens"] == 25 and out["usage"]["output_tokens"] is None


# -- what a hosted call imports --------------------------------------------------------------------------------------

_PROBE = """
import sys
sys.argv = ["llmctl", *sys.argv[1:]]
from llmctl.cli.app import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = ("torch", "transformers", "accelerate", "bitsandbytes", "huggingface_hub", "openai", "anthropic")
print("IMPORTED", sorted(m for m in heavy if m in sys.modules), "EXIT", code, file=sys.stderr)
"""


def _probe(args: list[str], env: dict[str, str]) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    marker = [line for line in done.stderr.splitlines() if line.startswith("IMPORTED")]
    assert marker, done.stderr
    return done.stdout, marker[-1]


def test_hosted_generate_imports_only_its_own_sdk(tmp_path: Path) -> None:
    with OpenAIServer(api_key=OPENAI_KEY) as oai_server, AnthropicServer(api_key=ANTHROPIC_KEY) as ant_server:
        config = tmp_path / "hosted.toml"
        config.write_text(
            f'[providers.openai]\nbase_url = "{oai_server.base_url}"\n'
            f'[providers.anthropic]\nbase_url = "{ant_server.base_url}"\n'
        )
        env = {"LLMCTL_CONFIG": str(config), "OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY}
        out, seen = _probe(["generate", "-m", "openai/gpt-4o-mini", "Hi"], env)
        assert out == Reply().text + "\n"
        assert seen == "IMPORTED ['openai'] EXIT 0"
        out, seen = _probe(["generate", "-m", "anthropic/claude-sonnet-4-6", "Hi"], env)
        assert out == Reply().text + "\n"
        assert seen == "IMPORTED ['anthropic'] EXIT 0"
        _, seen = _probe(["--help"], env)
        assert seen == "IMPORTED [] EXIT 0"
