"""Hostile inputs against "a repo id never resolves to a folder in the current directory".

A Hub repo id (``hf/ORG/NAME``, an alias's ``id``) comes from the Hugging Face cache only, whatever the
current directory holds (that folder's Python would run with ``trust_remote_code``); a folder is loaded
only when it is written as a path (``./x``, ``/x``, ``~/x``) or named by ``path = ...``. Run through the
real entry point, across every command that turns a model name into files.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.errors import ModelNotFoundError
from llmctl.providers.registry import resolve
from tests.conftest import CliResult

Run = Callable[..., CliResult]
MARKER = "remote-code-ran"


# -- a repo id is never a folder in the current directory ------------------------------------------------


@pytest.fixture
def trap(tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding ./microsoft/phi-2/: a real tiny model whose config runs Python when trusted."""
    work = tmp_path / "work"
    folder = work / "microsoft" / "phi-2"
    shutil.copytree(tiny_models["llama"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(tmp_path / MARKER)!r}).write_text('ran')\n"
        "from transformers import LlamaConfig, LlamaForCausalLM\n"
        "class EvilConfig(LlamaConfig):\n    pass\n"
        "class EvilModel(LlamaForCausalLM):\n    config_class = EvilConfig\n"
    )
    monkeypatch.chdir(work)
    return folder


ALIAS = '[models.phi]\nprovider = "hf"\nid = "microsoft/phi-2"\ntrust_remote_code = true\n'


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("generate", "-m", "phi", "hi"), None),
        (("generate", "-m", "hf/microsoft/phi-2", "hi"), None),
        (("generate", "hi"), None),  # default_model = "phi"
        (("chat", "-m", "phi", "--no-save"), b"hi\n"),
        (("models", "info", "phi"), None),
        (("models", "info", "hf/microsoft/phi-2"), None),
        (("models", "load", "phi"), None),
        (("tokens", "count", "-m", "phi", "hi"), None),
        (("tokens", "count", "-m", "hf/microsoft/phi-2", "hi"), None),
        (("bench", "phi", "--runs", "1", "--warmup", "0"), None),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_a_repo_id_never_loads_the_folder_of_that_name_in_the_current_directory(
    run_llmctl: Run, config_file: Path, trap: Path, tmp_path: Path, args: tuple[str, ...], stdin: bytes | None
) -> None:
    config_file.write_text('default_model = "phi"\n' + ALIAS)

    result = run_llmctl(*args, stdin=stdin)

    assert not (tmp_path / MARKER).exists(), "the folder's Python ran"
    assert result.exit_code == 2, result.stderr
    assert "not in the local Hugging Face cache" in result.stderr or "is not downloaded" in result.stderr
    assert "llmctl models download microsoft/phi-2" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_rm_of_a_repo_id_leaves_the_folder_of_that_name_alone(
    run_llmctl: Run, config_file: Path, trap: Path
) -> None:
    config_file.write_text(ALIAS)
    for reference in ("phi", "hf/microsoft/phi-2", "microsoft/phi-2"):
        result = run_llmctl("models", "rm", reference, "--yes")
        assert result.exit_code == 2 and "not in the Hugging Face cache" in result.stderr, result.stderr
    assert (trap / "model.safetensors").is_file()


def test_models_list_shows_nothing_of_the_folder_of_that_name(run_llmctl: Run, config_file: Path, trap: Path) -> None:
    config_file.write_text(ALIAS)
    result = run_llmctl("models", "list", "--json")
    assert result.exit_code == 0, result.stderr
    [phi] = [e for e in json.loads(result.stdout) if e["name"] == "phi"]
    assert phi["location"] is None and phi["parameters"] is None


def test_a_bare_org_name_is_not_a_folder_either_and_the_hint_says_how_to_write_one(run_llmctl: Run, trap: Path) -> None:
    result = run_llmctl("tokens", "count", "-m", "microsoft/phi-2", "hi")
    assert result.exit_code == 2
    assert "Unknown provider 'microsoft'" in result.stderr and "-m ./microsoft/phi-2" in result.stderr


@pytest.mark.parametrize(
    ("reference", "alias"),
    [
        ("./org/tiny", None),
        ("org/../org/tiny", None),  # not written as a path: refused (checked below)
        ("tiny", 'path = "org/tiny"'),
        ("tiny", 'id = "./org/tiny"'),
    ],
)
def test_a_folder_loads_when_written_as_a_path_or_named_by_path(
    run_llmctl: Run,
    config_file: Path,
    tiny_models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: str,
    alias: str | None,
) -> None:
    work = tmp_path / "work"
    shutil.copytree(tiny_models["llama"], work / "org" / "tiny")
    monkeypatch.chdir(work)
    if alias:
        config_file.write_text(f'[models.tiny]\nprovider = "hf"\n{alias}\n')

    result = run_llmctl("tokens", "count", "-m", reference, "hi", "--json")

    if reference.startswith("org/"):
        assert result.exit_code == 2 and "Unknown provider 'org'" in result.stderr
        return
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["source"] == "exact"


def test_a_repo_id_in_the_cache_wins_over_a_folder_of_that_name(
    run_llmctl: Run, tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "hf-home" / "hub" / "models--org--tiny"
    snapshot = repo / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_models["llama"], snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    work = tmp_path / "work"
    shutil.copytree(tiny_models["gemma"], work / "org" / "tiny")
    monkeypatch.chdir(work)

    result = run_llmctl("models", "info", "hf/org/tiny", "--json")

    assert result.exit_code == 0, result.stderr
    details = json.loads(result.stdout)
    assert details["source"] == "hf-cache" and details["location"] == str(snapshot)
    assert details["architecture"] == "LlamaForCausalLM"


@pytest.mark.parametrize(
    ("reference", "models"),
    [
        ("hf/../outside", {}),
        ("hf/./org/tiny", {}),
        ("hf//etc/model", {}),
        ("hf/org/name/extra", {}),
        ("hf/org--name", {}),
        ("hf/.hidden/x", {}),
        ("hf/org/na me", {}),
        ("m", {"m": {"provider": "hf", "id": "org/../../outside"}}),
        ("m", {"m": {"provider": "hf", "id": "../not-there"}}),  # a path: a folder that does not exist
        ("m", {"m": {"provider": "hf", "path": "/does/not/exist"}}),
    ],
)
def test_references_that_are_neither_a_repo_id_nor_an_existing_folder_are_refused(
    reference: str, models: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError):
        resolve(reference, Settings.model_validate({"models": models}))


def test_a_hosted_alias_keeps_a_model_name_that_looks_like_a_path() -> None:
    settings = Settings.model_validate(
        {
            "providers": {"vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}},
            "models": {"served": {"provider": "vllm", "id": "/models/Llama-3"}},
        }
    )
    assert resolve("served", settings).model_id == "/models/Llama-3"
    assert resolve("served", settings).local_folder is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"provider": "hf"}, "set exactly one of id"),
        ({"provider": "hf", "id": "org/x", "path": "./x"}, "set exactly one of id"),
    ],
)
def test_an_alias_needs_exactly_one_of_id_and_path(
    run_llmctl: Run, config_file: Path, table: dict[str, str], message: str
) -> None:
    config_file.write_text("[models.m]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items()))
    result = run_llmctl("config", "show")
    assert result.exit_code == 2 and message in result.stderr and "models.m" in result.stderr


@pytest.mark.parametrize("repo_id", ["org/..", "../outside", "org/a--b", ".hidden/x", "org/x.", "org/-x"])
def test_models_download_and_rm_refuse_what_is_not_a_repo_id(run_llmctl: Run, repo_id: str) -> None:
    download = run_llmctl("models", "download", repo_id, "--dry-run")
    remove = run_llmctl("models", "rm", f"hf/{repo_id}", "--yes")
    assert download.exit_code == 2 and "is not a Hub repository id" in download.stderr, download.stderr
    assert remove.exit_code == 2 and "is not a Hub repository id" in remove.stderr, remove.stderr
