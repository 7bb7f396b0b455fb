"""``llmctl models download | list | info | load | rm`` as a user runs them, against the loopback Hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmctl.hub.weights import estimate_weights, tensor_stats
from llmctl.paths import demo_model_dir
from tests.conftest import CliResult
from tests.model_hub import (
    build_quantizable_llama,
    hub,
    hub_cache,
    hub_home,
    serve_model,
    true_parameter_count,
)
from tests.wire.hub_server import HubServer, iter_cache_files

__all__ = ["hub", "hub_cache", "hub_home"]  # fixtures

Run = Callable[..., CliResult]
REPO = "org/tiny-llama"
HEAVY = ("torch", "transformers", "accelerate", "bitsandbytes", "openai", "anthropic", "huggingface_hub")


def as_json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    return {**env, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1", **extra}


def _llmctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmctl", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )


# -- download ------------------------------------------------------------------------------------------------


@pytest.mark.slow  # two fresh interpreters that import torch
def test_download_then_generate_in_fresh_processes_with_no_other_step(
    hub: HubServer, hub_home: Path, tiny_models: dict[str, Path]
) -> None:
    serve_model(hub, REPO, tiny_models["llama"])
    home = hub_home.parent / "user-hf-home"

    fetched = _llmctl("models", "download", REPO, env=_env(HF_ENDPOINT=hub.url, HF_HOME=str(home), HF_HUB_OFFLINE="0"))
    answer = _llmctl(
        "generate", "-m", f"hf/{REPO}", "--max-tokens", "5", "--temperature", "0", "Hello",
        env=_env(HF_HOME=str(home), HF_HUB_OFFLINE="1"),
    )  # fmt: skip

    assert fetched.returncode == 0, fetched.stderr
    assert f'Use it: llmctl generate -m hf/{REPO} "Hello"' in fetched.stdout
    assert (home / "hub" / "models--org--tiny-llama" / "refs" / "main").is_file()
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()


def test_download_reports_each_file_and_a_summary(
    run_llmctl: Run, hub: HubServer, tiny_models: dict[str, Path]
) -> None:
    serve_model(hub, REPO, tiny_models["llama"])

    result = run_llmctl("models", "download", f"hf/{REPO}")  # the hf/ prefix of -m is accepted

    assert result.exit_code == 0, result.stderr
    assert "downloaded model.safetensors" in result.stderr and "downloaded config.json" in result.stderr
    assert "pytorch_model.bin" not in result.stderr
    assert f"Downloaded {REPO}" in result.stdout and "Parameters:" in result.stdout
    again = run_llmctl("models", "download", f"https://huggingface.co/{REPO}")
    assert again.exit_code == 0 and "already downloaded" in again.stderr
    assert "downloaded " not in again.stderr  # nothing fetched twice


def test_download_json(run_llmctl: Run, hub: HubServer, tiny_models: dict[str, Path]) -> None:
    repo = serve_model(hub, REPO, tiny_models["gemma"])
    data = as_json(run_llmctl("models", "download", REPO, "--include", "README.md", "--json"))
    assert data["name"] == f"hf/{REPO}" and data["commit_sha"] == repo.revisions["main"].commit_sha
    assert "README.md" in {f["path"] for f in data["files"]}
    assert data["parameters"] == true_parameter_count(tiny_models["gemma"])
    assert data["downloaded_bytes"] == data["total_bytes"] > 0


def test_the_terminal_progress_bar_counts_bytes_across_all_files(
    hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    from io import StringIO

    from rich.console import Console

    from llmctl.cli.models.download_progress import RichDownloadProgress
    from llmctl.hub.download import download, plan_download

    serve_model(hub, REPO, tiny_models["llama"])
    console = Console(file=StringIO(), force_terminal=True, width=100)
    progress = RichDownloadProgress(console)

    plan = plan_download(REPO, cache_dir=hub_cache)
    download(plan, progress)

    overall = progress.progress.tasks[0]
    assert overall.total == overall.completed == plan.total_bytes
    assert len(progress.progress.tasks) == 1  # each file's bar goes once the file is done
    assert f"total ({len(plan.files)} files)" in console.file.getvalue()  # type: ignore[attr-defined]


def test_dry_run_lists_files_sizes_and_memory_without_downloading(
    run_llmctl: Run, hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    serve_model(hub, REPO, tiny_models["llama"])
    parameters = true_parameter_count(tiny_models["llama"])

    data = as_json(run_llmctl("models", "download", REPO, "--dry-run", "--json"))
    table = run_llmctl("models", "download", REPO, "--dry-run")

    assert {f["path"] for f in data["files"]} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert all(f["state"] == "missing" for f in data["files"])
    assert data["total_bytes"] == sum(f["size_bytes"] for f in data["files"])
    assert data["parameters"] == parameters
    memory = {m["precision"]: m for m in data["memory"]}
    assert memory["fp32"]["weights_bytes"] == 4 * parameters and memory["fp32"]["fits"]["ram"] is True
    assert table.exit_code == 0, table.stderr
    assert "dry run" in table.stdout and "Skipped 5 files" in table.stdout and "fits RAM" in table.stdout
    assert not hub_cache.exists() or not list(iter_cache_files(hub_cache))


def test_gated_and_missing_repositories(run_llmctl: Run, hub: HubServer, tiny_models: dict[str, Path]) -> None:
    serve_model(hub, "org/gated", tiny_models["llama"], gated=True)

    gated = run_llmctl("models", "download", "org/gated")
    missing = run_llmctl("models", "download", "org/missing")
    bad = run_llmctl("models", "download", "not a repo")

    assert gated.exit_code == 1
    assert "gated" in gated.stderr and f"{hub.url}/org/gated" in gated.stderr and "HF_TOKEN" in gated.stderr
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert bad.exit_code == 2 and "not a Hub repository id" in bad.stderr
    assert "Traceback" not in gated.stderr + missing.stderr + bad.stderr


def test_offline_mode_is_explained(run_llmctl: Run) -> None:
    result = run_llmctl("models", "download", REPO)  # the suite runs with HF_HUB_OFFLINE=1
    assert result.exit_code == 1 and "HF_HUB_OFFLINE=1" in result.stderr


# -- list ----------------------------------------------------------------------------------------------------


def test_list_shows_downloaded_models_aliases_and_hosted_prices(
    run_llmctl: Run, hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path], config_file: Path
) -> None:
    serve_model(hub, REPO, tiny_models["llama"])
    assert run_llmctl("models", "download", REPO).exit_code == 0
    config_file.write_text(
        '[models.small]\nprovider = "hf"\nid = "org/tiny-llama"\nquantization = "8bit"\n'
        '[providers.my-vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[models.remote]\nprovider = "my-vllm"\nid = "qwen"\ninput_price_per_mtok = 0.2\noutput_price_per_mtok = 0.6\n'
    )

    entries = {e["name"]: e for e in as_json(run_llmctl("models", "list", "--json"))}
    narrow = run_llmctl("models", "list")  # piped: 80 columns
    wide = _llmctl("models", "list", env=_env(HF_HOME=os.environ["HF_HOME"], COLUMNS="250"))

    cached = entries[f"hf/{REPO}"]
    blobs = hub_cache / "models--org--tiny-llama" / "blobs"
    assert cached["source"] == "hf-cache" and cached["model_id"] == REPO
    assert cached["parameters"] == true_parameter_count(tiny_models["llama"])
    assert cached["size_bytes"] == sum(p.stat().st_size for p in blobs.iterdir())
    assert "alias: small" in cached["description"]
    assert entries["small"]["quantization"] == "8bit" and entries["small"]["parameters"] == cached["parameters"]
    assert (entries["remote"]["input_price_per_mtok"], entries["remote"]["output_price_per_mtok"]) == (0.2, 0.6)
    assert narrow.exit_code == 0 and f"hf/{REPO}" in narrow.stdout  # names never fold
    assert wide.returncode == 0, wide.stderr
    assert f"hf/{REPO}" in wide.stdout and "8bit" in wide.stdout and "$0.2 / $0.6 per Mtok" in wide.stdout


def test_list_with_downloads_imports_nothing_heavy(
    hub: HubServer, hub_home: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    serve_model(hub, REPO, tiny_models["llama"])
    from llmctl.hub.download import download, plan_download

    download(plan_download(REPO, cache_dir=hub_home / "hub"))
    probe = (
        "import json, sys; sys.argv = ['llmctl', 'models', 'list', '--json']\n"
        "from llmctl.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    env = _env(HF_HOME=str(hub_home), LLMCTL_CONFIG=str(tmp_path / "none.toml"))
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert not modules & set(HEAVY)
    assert f"hf/{REPO}" in {e["name"] for e in json.loads(proc.stdout)}


# -- info ----------------------------------------------------------------------------------------------------


def test_info_of_a_folder_shows_the_figures(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["llama"]
    parameters = true_parameter_count(folder)

    data = as_json(run_llmctl("models", "info", str(folder), "--json"))
    text = run_llmctl("models", "info", str(folder))

    assert data["parameters"] == parameters and data["context_window"] == 256 and data["has_chat_template"]
    assert [e["precision"] for e in data["estimates"]] == ["fp32", "fp16/bf16", "8-bit", "4-bit"]
    assert data["hardware"]["ram_total_bytes"] > 0
    assert text.exit_code == 0, text.stderr
    for label in ("LlamaForCausalLM", f"{parameters:,}", "256 tokens", "chat_template.jinja", "fits RAM", "4-bit"):
        assert label in text.stdout


def test_info_of_a_downloaded_repo_and_of_an_alias(
    run_llmctl: Run, hub: HubServer, tiny_models: dict[str, Path], config_file: Path
) -> None:
    serve_model(hub, REPO, tiny_models["mistral"])
    assert run_llmctl("models", "download", REPO).exit_code == 0
    config_file.write_text('[models.m]\nprovider = "hf"\nid = "org/tiny-llama"\n')

    by_repo = as_json(run_llmctl("models", "info", f"hf/{REPO}", "--json"))
    by_alias = as_json(run_llmctl("models", "info", "m", "--json"))

    assert by_repo["source"] == by_alias["source"] == "hf-cache"
    assert by_repo["architecture"] == "MistralForCausalLM"
    assert by_repo["parameters"] == by_alias["parameters"] == true_parameter_count(tiny_models["mistral"])


def test_info_of_a_model_that_is_not_downloaded(run_llmctl: Run) -> None:
    result = run_llmctl("models", "info", "hf/org/elsewhere")
    assert result.exit_code == 2 and "llmctl models download org/elsewhere" in result.stderr


@pytest.mark.skipif(not (demo_model_dir() / "config.json").exists(), reason="the demo model is not built yet")
def test_info_of_the_demo_model(run_llmctl: Run) -> None:
    data = as_json(run_llmctl("models", "info", "demo", "--json"))
    stats = tensor_stats(demo_model_dir())
    assert data["source"] == "built-in" and stats is not None and data["parameters"] == stats.parameters


# -- load ----------------------------------------------------------------------------------------------------


def test_load_reports_time_dtype_placement_memory_and_speed(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    data = as_json(run_llmctl("models", "load", str(tiny_models["llama"]), "--max-tokens", "4", "--json"))
    assert data["dtype"] == "float32" and data["quantization"] is None
    assert set(data["devices"]) == {"cpu"}
    assert data["footprint_bytes"] >= data["estimate"]["weights_bytes"] > 0
    assert 1 <= data["generated_tokens"] <= 4 and data["tokens_per_second"] > 0 and data["load_seconds"] > 0

    text = run_llmctl("models", "load", str(tiny_models["llama"]), "--max-tokens", "4", "--dtype", "bfloat16")
    assert text.exit_code == 0, text.stderr
    for label in ("load time", "bfloat16", "cpu", "tokens/s", "memory"):
        assert label in text.stdout


def test_load_refuses_what_clearly_will_not_fit_and_names_the_quantization_that_would(
    run_llmctl: Run, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmctl.services.models import hardware

    stats = tensor_stats(tiny_models["llama"])
    assert stats is not None
    free = estimate_weights(stats, "8-bit", rest_bytes=4) + 1  # fp32 does not fit, 8-bit does
    monkeypatch.setattr(hardware, "ram", lambda: (free, free))

    result = run_llmctl("models", "load", str(tiny_models["llama"]))

    assert result.exit_code == 1 and "Loaded" not in result.stdout
    assert "needs about" in result.stderr and "in fp32" in result.stderr and "RAM has" in result.stderr
    assert "--quantize 8bit" in result.stderr and "--force" in result.stderr


def test_load_on_a_gpu_this_machine_does_not_have(run_llmctl: Run, tiny_models: dict[str, Path]) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run_llmctl("models", "load", str(tiny_models["llama"]), "--device", "cuda:0")
    assert result.exit_code == 2 and "no GPU cuda:0" in result.stderr and "--device cpu" in result.stderr


def test_load_is_for_local_models(run_llmctl: Run) -> None:
    result = run_llmctl("models", "load", "openai/gpt-4o-mini")
    assert result.exit_code == 2 and "local models" in result.stderr


@pytest.mark.slow
def test_8bit_and_4bit_loads_are_smaller_than_full_precision(run_llmctl: Run, tmp_path_factory: Any) -> None:
    folder = build_quantizable_llama(tmp_path_factory.mktemp("quantizable") / "llama256")

    full = as_json(run_llmctl("models", "load", str(folder), "--max-tokens", "2", "--json"))
    eight = as_json(run_llmctl("models", "load", str(folder), "--quantize", "8bit", "--max-tokens", "2", "--json"))
    four = as_json(run_llmctl("models", "load", str(folder), "--quantize", "4bit", "--max-tokens", "2", "--json"))

    assert (eight["quantization"], four["quantization"]) == ("8bit", "4bit")
    assert four["footprint_bytes"] < eight["footprint_bytes"] < full["footprint_bytes"]
    assert eight["footprint_bytes"] < full["footprint_bytes"] / 2
    for report in (full, eight, four):  # the estimate `info` and the refusal use is close to the real thing
        assert report["generated_tokens"] >= 1
        assert abs(report["footprint_bytes"] - report["estimate"]["weights_bytes"]) < 0.1 * report["footprint_bytes"]


# -- rm ------------------------------------------------------------------------------------------------------


def test_rm_asks_refuses_without_a_terminal_and_reports_freed_space(
    run_llmctl: Run, hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    serve_model(hub, REPO, tiny_models["llama"])
    assert run_llmctl("models", "download", REPO).exit_code == 0
    blobs = hub_cache / "models--org--tiny-llama" / "blobs"
    size = sum(p.stat().st_size for p in blobs.iterdir())

    piped = run_llmctl("models", "rm", f"hf/{REPO}", stdin=b"y\n")
    assert piped.exit_code == 2 and "--yes" in piped.stderr and blobs.is_dir()

    declined = run_llmctl("models", "rm", f"hf/{REPO}", "--json", stdin=None)  # a terminal that answers nothing
    assert declined.exit_code == 1 and blobs.is_dir()

    removed = as_json(run_llmctl("models", "rm", REPO, "--yes", "--json"))
    assert removed["freed_bytes"] == size and removed["repo_id"] == REPO
    assert not (hub_cache / "models--org--tiny-llama").exists()
    assert f"hf/{REPO}" not in {e["name"] for e in as_json(run_llmctl("models", "list", "--json"))}


def test_rm_text_and_what_it_will_not_remove(run_llmctl: Run, hub: HubServer, tiny_models: dict[str, Path]) -> None:
    serve_model(hub, REPO, tiny_models["llama"])
    assert run_llmctl("models", "download", REPO).exit_code == 0

    removed = run_llmctl("models", "rm", f"hf/{REPO}", "-y")
    again = run_llmctl("models", "rm", f"hf/{REPO}", "-y")
    demo = run_llmctl("models", "rm", "demo", "-y")
    folder = run_llmctl("models", "rm", str(tiny_models["llama"]), "-y")

    assert removed.exit_code == 0 and f"Removed {REPO}; freed" in removed.stdout
    assert again.exit_code == 2 and "not in the Hugging Face cache" in again.stderr
    assert demo.exit_code == 2 and "ships inside llmctl" in demo.stderr
    assert folder.exit_code == 2 and "folder" in folder.stderr and tiny_models["llama"].is_dir()


def test_rm_one_revision_keeps_the_others(
    run_llmctl: Run, hub: HubServer, hub_cache: Path, tiny_models: dict[str, Path]
) -> None:
    old_config = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "old": true}'
    repo = serve_model(hub, REPO, tiny_models["llama"], extra_revisions={"v1": {"config.json": old_config}})
    assert run_llmctl("models", "download", REPO).exit_code == 0
    assert run_llmctl("models", "download", REPO, "--revision", "v1").exit_code == 0
    snapshots = hub_cache / "models--org--tiny-llama" / "snapshots"

    removed = as_json(run_llmctl("models", "rm", REPO, "--revision", "v1", "--yes", "--json"))

    assert removed["whole_repo"] is False and removed["revisions"] == [repo.revisions["v1"].commit_sha]
    assert removed["freed_bytes"] == len(old_config)  # the only blob v1 does not share with main
    assert [p.name for p in snapshots.iterdir()] == [repo.revisions["main"].commit_sha]
