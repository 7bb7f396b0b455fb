"""A model's names all come from ResolvedModel: what to type again, what a result reports, what the ledger keeps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from llmctl.config import Settings
from llmctl.paths import demo_model_dir
from llmctl.providers.registry import resolve

SETTINGS = Settings.model_validate(
    {
        "providers": {"my-vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"}},
        "models": {"fast": {"provider": "my-vllm", "id": "Qwen/Qwen2.5-7B-Instruct"}},
    }
)
FOLDER = "FOLDER"  # stands for a local model folder made in the test


@dataclass(frozen=True)
class Case:
    typed: str
    display_name: str  # what to type to get it again; its name in messages and in a saved chat
    short_name: str  # a result's `model` (generate --json)
    recorded_id: str  # the ledger's `model`


CASES = [
    Case("openai/gpt-4o-mini", "openai/gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini"),
    Case(
        "hf/meta-llama/Meta-Llama-3-8B-Instruct",
        "hf/meta-llama/Meta-Llama-3-8B-Instruct",
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "meta-llama/Meta-Llama-3-8B-Instruct",
    ),
    Case("fast", "fast", "fast", "Qwen/Qwen2.5-7B-Instruct"),
    Case("demo", "demo", "demo", "llmctl/demo"),
    Case(FOLDER, FOLDER, FOLDER, FOLDER),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.typed)
def test_every_name_of_a_model(case: Case, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")

    def real(name: str) -> str:
        return str(folder) if name == FOLDER else name

    resolved = resolve(real(case.typed), SETTINGS)
    assert (resolved.display_name, resolved.short_name, resolved.recorded_id) == (
        real(case.display_name),
        real(case.short_name),
        real(case.recorded_id),
    )
    again = resolve(resolved.display_name, SETTINGS)  # a saved chat resumes with it
    assert (again.provider_name, again.model_id, again.alias) == (
        resolved.provider_name,
        resolved.model_id,
        resolved.alias,
    )


def test_the_demo_is_recorded_by_name_not_by_its_install_folder() -> None:
    resolved = resolve("demo", SETTINGS)
    assert Path(resolved.model_id) == demo_model_dir() and resolved.recorded_id == "llmctl/demo"
