"""GGUF models through the CLI as a user runs it (``python -m llmctl``): generate, chat, tokens count, bench,
models info/list/download, Ctrl-C, and hostile files that must end in one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.model_hub import hub, hub_cache, hub_home
from tests.tiny_gguf import write_gguf
from tests.wire.hub_server import HubServer

__all__ = ["hub", "hub_cache", "hub_home"]  # fixtures

REPO_ROOT = Path(__file__).resolve().parents[2]
GREEDY = ("--temperature", "0", "--max-tokens", "8")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LLMCTL_DEBUG"}
    return {**env, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **extra}


def _llmctl(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmctl", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=180,
        check=False,
    )


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _direct(path: Path, messages: list[dict[str, str]], max_tokens: int) -> tuple[int, str]:
    """(prompt tokens, greedy text) from llama-cpp-python by itself, its own template formatter included."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = llama_cpp.Llama(str(path), n_ctx=256, verbose=False)
    try:
        formatter = Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"],
            bos_token=llm._model.token_get_text(llm.token_bos()),
            eos_token=llm._model.token_get_text(llm.token_eos()),
        )
        ids = llm.tokenize(formatter(messages=messages).prompt.encode(), add_bos=False, special=True)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        out: list[int] = []
        for token in llm.generate(ids, temp=0.0, top_k=0, min_p=0.0, repeat_penalty=1.0):
            if llama_cpp.llama_vocab_is_eog(vocab, token) or len(out) >= max_tokens:
                break
            out.append(token)
        return len(ids), llm.detokenize(out).decode("utf-8", errors="replace")
    finally:
        llm.close()


needs_llama_cpp = pytest.mark.skipif(
    __import__("importlib").util.find_spec("llama_cpp") is None, reason="the gguf extra is not installed"
)


@needs_llama_cpp
def test_generate_matches_llama_cpp_python_and_is_free_and_exact(tiny_ggufs: dict[str, Path]) -> None:
    path = tiny_ggufs["q8_0"]
    data = _json(_llmctl("generate", "-m", str(path), "Hello there", *GREEDY, "--json"))
    prompt_tokens, text = _direct(path, [{"role": "user", "content": "Hello there"}], 8)
    assert data["text"] == text
    assert data["provider"] == "llamacpp"
    assert data["usage"]["input_tokens"] == prompt_tokens and data["usage"]["source"] == "exact"
    assert data["cost_usd"] == 0.0


@needs_llama_cpp
def test_tokens_count_is_exact_with_llama_cpps_tokenizer(tiny_ggufs: dict[str, Path]) -> None:
    path = tiny_ggufs["f16"]
    data = _json(_llmctl("tokens", "count", "-m", str(path), "-s", "Be brief.", "Hello there", "--json"))
    prompt_tokens, _ = _direct(
        path, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}], 0
    )
    assert data["tokens"] == prompt_tokens
    assert data["source"] == "exact"
    assert data["context_window"] == 256


@needs_llama_cpp
def test_chat_reuses_the_kv_cache_and_reports_it(tiny_ggufs: dict[str, Path], isolated_home: Path) -> None:
    path, messages = str(tiny_ggufs["f32"]), "Hello there\nWhat did I say?\n"
    cached = _llmctl("chat", "-m", path, *GREEDY, stdin=messages)
    fresh = _llmctl("chat", "-m", path, *GREEDY, "--no-save", "--no-kv-cache", stdin=messages)
    assert cached.returncode == fresh.returncode == 0, cached.stderr + fresh.stderr
    assert cached.stdout == fresh.stdout
    [saved] = [json.loads(p.read_text()) for p in (isolated_home / "conversations").glob("*.json")]
    first, second = (turn["usage"] for turn in saved["turns"])
    assert first["cached_input_tokens"] == 0
    assert second["cached_input_tokens"] >= first["input_tokens"]  # the whole first prompt came from the cache
    assert second["source"] == "exact"


@needs_llama_cpp
def test_bench_runs_a_gguf_model_as_a_local_one(tiny_ggufs: dict[str, Path]) -> None:
    bench = ("--runs", "2", "--warmup", "1", "--prompt-tokens", "16", "--max-tokens", "5", "--json")
    data = _json(_llmctl("bench", str(tiny_ggufs["q8_0"]), *bench))
    assert len(data["runs"]) == 2
    assert all(run["output_tokens"] <= 5 for run in data["runs"])
    assert data["environment"]["device"] != "remote API"


def test_models_info_reads_the_gguf_header_without_llama_cpp(tiny_ggufs: dict[str, Path]) -> None:
    probe = (
        "import sys\nfrom llmctl.cli.app import main\nsys.argv = ['llmctl', 'models', 'info', sys.argv[1], '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('llama_cpp', 'torch', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tiny_ggufs["q8_0"])],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body, loaded = result.stdout.rsplit("LOADED", 1)
    assert loaded.strip() == "[]"
    data = json.loads(body)
    assert data["checkpoint_dtype"] == data["checkpoint_quantization"] == "Q8_0"
    assert data["context_window"] == 256
    assert data["parameters"] > 0
    assert data["kind"] == "llamacpp" and data["source"] == "file"


def test_models_list_shows_gguf_files_in_the_hugging_face_cache(tiny_ggufs: dict[str, Path], tmp_path: Path) -> None:
    hub_cache_dir = tmp_path / "hf" / "hub"
    snapshot = hub_cache_dir / "models--org--tiny-GGUF" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (hub_cache_dir / "models--org--tiny-GGUF" / "refs").mkdir()
    (hub_cache_dir / "models--org--tiny-GGUF" / "refs" / "main").write_text("abc")
    for outtype in ("f16", "q8_0"):
        (snapshot / f"tiny-{outtype.upper()}.gguf").write_bytes(tiny_ggufs[outtype].read_bytes())
    data = _json(_llmctl("models", "list", "--json", HF_HOME=str(tmp_path / "hf")))
    names = {entry["name"]: entry for entry in data}
    assert "llamacpp/org/tiny-GGUF:Q8_0" in names and "llamacpp/org/tiny-GGUF:F16" in names
    assert names["llamacpp/org/tiny-GGUF:Q8_0"]["quantization"] == "Q8_0"
    assert "hf/org/tiny-GGUF" not in names  # not a transformers model (nor an incomplete one)


@needs_llama_cpp
def test_download_a_repos_gguf_file_then_run_it_offline(
    hub: HubServer, tiny_ggufs: dict[str, Path], hub_home: Path
) -> None:
    files = {
        "README.md": b"# tiny GGUF\n",
        "tiny-Q8_0.gguf": tiny_ggufs["q8_0"].read_bytes(),
        "tiny-F16.gguf": tiny_ggufs["f16"].read_bytes(),
    }
    hub.add_repo("org/tiny-GGUF", files)
    online = {"HF_ENDPOINT": hub.url, "HF_HOME": str(hub_home), "HF_HUB_OFFLINE": "0"}
    fetched = _llmctl("models", "download", "org/tiny-GGUF", "--include", "*Q8_0.gguf", **online)
    assert fetched.returncode == 0, fetched.stderr
    assert "llmctl generate -m llamacpp/org/tiny-GGUF:Q8_0" in fetched.stdout
    assert "config.json" not in fetched.stderr and "safetensors" not in fetched.stderr  # no transformers warnings
    snapshot = next((hub_home / "hub" / "models--org--tiny-GGUF" / "snapshots").iterdir())
    assert sorted(p.name for p in snapshot.iterdir()) == ["tiny-Q8_0.gguf"]

    ran = _json(_llmctl("generate", "-m", "llamacpp/org/tiny-GGUF", "Hello there", *GREEDY, "--json",
                        HF_HOME=str(hub_home)))  # fmt: skip
    _, text = _direct(tiny_ggufs["q8_0"], [{"role": "user", "content": "Hello there"}], 8)
    assert ran["text"] == text


@needs_llama_cpp
def test_an_alias_names_a_gguf_file(tiny_ggufs: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[providers.cpp]\nkind = "llamacpp"\nthreads = 1\nn_ctx = 128\n\n'
        f'[models.tiny]\nprovider = "cpp"\npath = "{tiny_ggufs["q8_0"]}"\n'
    )
    data = _json(_llmctl("tokens", "count", "-m", "tiny", "Hello there", "--json", LLMCTL_CONFIG=str(config)))
    assert data["context_window"] == 128 and data["source"] == "exact"


@needs_llama_cpp
def test_ctrl_c_stops_generation_promptly_and_exits_130(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    long_window = write_gguf(tiny_models["llama"], tmp_path / "long.gguf", context=8192)
    # The tiny model may end its answer on its own before the signal lands; then nothing was
    # interrupted and the attempt says nothing either way, so it is run again (at most 5 times).
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmctl", "generate", "-m", str(long_window), "Hi", "--max-tokens", "8000", "-u"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        assert proc.stdout is not None
        first = proc.stdout.read(1)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest, stderr = proc.communicate(timeout=60)
        if b"Interrupted" not in stderr and b"Tokens:" in stderr:
            continue  # it had finished: the whole answer and its usage line came first
        assert time.monotonic() - sent < 10
        assert proc.returncode == 130, stderr
        assert len(first + rest) >= 1
        assert "Traceback" not in stderr.decode()
        return
    pytest.fail("the model finished every answer before the signal landed")


# -- hostile files: one clear line, the right exit code, no traceback -----------------------------------

HOSTILE_FILES: list[tuple[str, bytes | None, int, str]] = [
    ("text.gguf", b"this is not a model\n" * 10, 1, "is not a GGUF file"),
    ("empty.gguf", b"", 1, "is not a GGUF file"),
    ("safetensors.gguf", b"\x10\x00\x00\x00\x00\x00\x00\x00{}", 1, "is not a GGUF file"),
    ("huge.gguf", b"GGUF\x03\x00\x00\x00" + b"\xff" * 16, 1, "damaged or cut short"),
    ("missing.gguf", None, 2, "No GGUF file at"),
]


@pytest.mark.parametrize("command", ["generate", "info"])
@pytest.mark.parametrize(("name", "content", "code", "message"), HOSTILE_FILES, ids=[h[0] for h in HOSTILE_FILES])
def test_a_hostile_file_is_one_line_and_an_exit_code(
    tmp_path: Path, command: str, name: str, content: bytes | None, code: int, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    args = ("generate", "-m", str(path), "Hi") if command == "generate" else ("models", "info", str(path))
    result = _llmctl(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("Error:") == 1


def test_a_truncated_download_is_named_cut_short(tiny_ggufs: dict[str, Path], tmp_path: Path) -> None:
    data = tiny_ggufs["q8_0"].read_bytes()
    path = tmp_path / "half.gguf"
    path.write_bytes(data[: len(data) // 2])
    result = _llmctl("generate", "-m", str(path), "Hi")
    assert result.returncode == 1
    assert "is cut short" in result.stderr and "download the file again" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_named_like_a_gguf_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").mkdir()
    result = _llmctl("generate", "-m", str(tmp_path / "model.gguf"), "Hi")
    assert result.returncode == 2
    assert "is a folder, not a GGUF file" in result.stderr
    assert "Traceback" not in result.stderr
