"""Every model a user can name, without loading any of them (no torch, no network)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmctl.config import DEMO_MODEL_ALIAS, KIND_ALIASES, Settings
from llmctl.paths import demo_model_dir

DEMO_DESCRIPTION = "tiny offline demo model (a toy)"
DEMO_SWITCH_HINT = (
    "The demo model is a toy that knows capitals, small arithmetic and llmctl itself. For real answers "
    "use -m PROVIDER/MODEL (e.g. hf/ORG/REPO, openai/gpt-4o-mini) or set default_model in the config "
    "(llmctl config set default_model ALIAS)."
)


@dataclass(frozen=True)
class ModelEntry:
    name: str  # what to pass to -m
    provider: str
    kind: str
    model_id: str
    source: str  # "built-in" | "alias"
    description: str | None = None
    location: str | None = None  # a local folder, when there is one
    architecture: str | None = None
    context_window: int | None = None
    size_bytes: int | None = None
    is_default: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def read_model_config(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _local_details(folder: Path) -> dict[str, Any]:
    config = read_model_config(folder)
    architectures = config.get("architectures") or []
    window = next(
        (
            config[k]
            for k in ("max_position_embeddings", "n_positions", "max_sequence_length")
            if isinstance(config.get(k), int)
        ),
        None,
    )
    return {
        "location": str(folder),
        "architecture": architectures[0] if architectures else config.get("model_type"),
        "context_window": window,
        "size_bytes": folder_size(folder),
    }


def list_models(settings: Settings) -> list[ModelEntry]:
    """The demo model and every configured alias, default first."""
    entries = [
        ModelEntry(
            name=DEMO_MODEL_ALIAS,
            provider="hf",
            kind="huggingface",
            model_id="llmctl/demo",
            source="built-in",
            description=DEMO_DESCRIPTION,
            is_default=settings.default_model == DEMO_MODEL_ALIAS,
            **_local_details(demo_model_dir()),
        )
    ]
    for alias, model in sorted(settings.models.items()):
        kind = KIND_ALIASES.get(settings.provider(model.provider).kind, settings.provider(model.provider).kind)
        local = Path(model.id).expanduser()
        details = _local_details(local) if kind == "huggingface" and local.is_dir() else {}
        if model.context_window:
            details["context_window"] = model.context_window
        entries.append(
            ModelEntry(
                name=alias,
                provider=model.provider,
                kind=kind,
                model_id=model.id,
                source="alias",
                description=model.description,
                is_default=settings.default_model == alias,
                **details,
            )
        )
    return entries
