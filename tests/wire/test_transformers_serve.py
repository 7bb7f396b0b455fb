"""llmctl against a real OpenAI-wire server nobody here wrote: ``transformers serve`` on loopback.

The server runs a tiny Llama built in the fixture; llmctl talks to it through the
official openai SDK, streaming and not. Its token counts must agree with the ones
llmctl counts itself with the same model's tokenizer.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

pytestmark = pytest.mark.slow

Run = Callable[..., CliResult]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``transformers serve`` with the tiny Llama preloaded; yields (base_url, model folder)."""
    executable = shutil.which("transformers", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("the transformers CLI is not installed")
    folder = tiny_models["llama"]
    port = _free_port()
    log = (tmp_path_factory.mktemp("serve") / "server.log").open("w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [executable, "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"transformers serve did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def configured(served: tuple[str, Path], config_file: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    base_url, folder = served
    monkeypatch.setenv("SERVE_KEY", "unused-by-the-server")
    config_file.write_text(
        f'[providers.ts]\nkind = "openai"\nbase_url = "{base_url}"\napi_key_env = "SERVE_KEY"\n'
        "timeout = 120\nmax_retries = 0\n"
    )
    return f"ts/{folder}"


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_generate_through_a_real_server_counts_what_llmctl_counts(
    run_llmctl: Run, configured: str, served: tuple[str, Path], stream: bool
) -> None:
    flags = [] if stream else ["--no-stream"]
    result = run_llmctl("generate", "-m", configured, "Hello there", "--max-tokens", "5", "--json", *flags)
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "ok" and answer["usage"]["source"] == "provider"
    assert answer["usage"]["output_tokens"] == 5 and answer["finish_reason"] == "length"
    counted = json.loads(run_llmctl("tokens", "count", "-m", str(served[1]), "Hello there", "--json").stdout)
    assert answer["usage"]["input_tokens"] == counted["tokens"]  # the server's count, and llmctl's own


def test_the_servers_models_are_listed(run_llmctl: Run, configured: str, served: tuple[str, Path]) -> None:
    result = run_llmctl("models", "list", "--remote", "ts", "--json")
    assert result.exit_code == 0, result.stderr
    assert str(served[1]) in result.stdout


def test_an_unknown_model_is_one_clear_error(run_llmctl: Run, configured: str) -> None:
    result = run_llmctl("generate", "-m", "ts/no-such/model-here", "Hi", "--max-tokens", "3")
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.stderr and result.stderr.startswith("Error:")
