"""Option aliases shared by commands, and the per-invocation state the root callback sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.domain import SEED_MAX, SEED_MIN, TOKENS_MAX
from llmctl.paths import config_path

if TYPE_CHECKING:
    from llmctl.config import Settings


@dataclass
class AppState:
    """What the root callback knows: where the config is; the settings, read once."""

    config_override: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return config_path(self.config_override)

    @property
    def config_must_exist(self) -> bool:
        """A path the user typed (--config) must exist; the default location may be absent."""
        return self.config_override is not None

    def settings(self) -> Settings:
        if self._settings is None:
            # pydantic costs ~0.1 s to import: only commands that read the config pay it.
            from llmctl.config import load_settings

            self._settings = load_settings(self.config_path, must_exist=self.config_must_exist)
        return self._settings


def app_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def complete_model_name(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    from llmctl.cli.completion import complete_model  # only a shell asking for completions gets here

    return complete_model(ctx, incomplete)


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Alias, PROVIDER/MODEL-ID, or a local model folder. Default: default_model.",
        autocompletion=complete_model_name,
    ),
]
SystemOpt = Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")]
TemperatureOpt = Annotated[
    float | None, typer.Option("--temperature", min=0.0, max=2.0, help="Sampling temperature; 0 is greedy.")
]


def _above_zero(value: float | None) -> float | None:
    # click's ranges cannot exclude only their minimum; top_p = 0 keeps no token, so config and flag refuse it.
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value} is not in the range 0<x<=1.")
    return value


TopPOpt = Annotated[
    float | None,
    typer.Option("--top-p", max=1.0, callback=_above_zero, help="Nucleus sampling mass, above 0 and at most 1."),
]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", min=1, max=TOKENS_MAX, help="Most tokens to generate.")
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", min=SEED_MIN, max=SEED_MAX, help="Seed for reproducible sampling.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
IgnoreBudgetOpt = Annotated[
    bool, typer.Option("--ignore-budget", help="Make the call even if a [budget] in the config is spent.")
]
RenderOpt = Annotated[
    bool | None,
    typer.Option(
        "--markdown/--raw",
        help="Render the answer as Markdown, or write raw text. Default: Markdown on a terminal, raw when piped.",
    ),
]


class Quantize(StrEnum):
    """--quantize: config.Quantization's values (a test keeps the two the same)."""

    EIGHT_BIT = "8bit"
    FOUR_BIT = "4bit"


class DTypeChoice(StrEnum):
    """--dtype: config.DType's values (a test keeps the two the same)."""

    AUTO = "auto"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT32 = "float32"


QuantizeOpt = Annotated[
    Quantize | None, typer.Option("--quantize", help="Local models: load quantized (bitsandbytes).")
]
DTypeOpt = Annotated[DTypeChoice | None, typer.Option("--dtype", help="Local models: weight dtype.")]

NoServerOpt = Annotated[
    bool,
    typer.Option(
        "--no-server", help="Load a local model in this process even when `llmctl serve` is running (warm attach)."
    ),
]

CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile",
        help="Local models: static KV cache + torch.compile for faster decoding; the first call compiles "
        "(minutes on a CPU, time reported), later ones reuse the on-disk cache.",
    ),
]
