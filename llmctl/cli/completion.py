"""``llmctl completion bash|zsh|fish``: the shell script that completes llmctl's commands, options and models.

The completion machinery is typer's; it is switched on only when a shell asks for
completions (``_LLMCTL_COMPLETE`` set), so ``llmctl --help`` pays nothing for it.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import typer

COMPLETE_VAR = "_LLMCTL_COMPLETE"
PROG_NAME = "llmctl"


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(shell: Annotated[Shell, typer.Argument(help="The shell to print the script for.")]) -> None:
    """Print the completion script for SHELL; load it from your shell's startup file.

    bash: eval "$(llmctl completion bash)"   (in ~/.bashrc)
    zsh:  eval "$(llmctl completion zsh)"    (in ~/.zshrc, after compinit)
    fish: llmctl completion fish > ~/.config/fish/completions/llmctl.fish

    Completes commands, options, and -m/--model with the aliases in the config, the demo
    model, downloaded models (hf/ORG/NAME) and hosted providers (NAME/).
    """
    # typer has no public API for the script when its --install-completion option is off
    # (it is: building that option costs start-up time on every command).
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell.value))


def enable_if_requested() -> None:
    """Register typer's shell completers when a shell is asking for completions, and only then."""
    if os.environ.get(COMPLETE_VAR):
        from typer._completion_classes import completion_init

        completion_init()


def complete_model(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Model names for -m: aliases, demo, downloaded models, and NAME/ for hosted providers."""
    from llmctl.cli.options import app_state

    try:
        settings = app_state(ctx).settings()
        from llmctl.services.models.catalog import cached_entries

        names = [("demo", "the built-in offline demo model")]
        names += [(alias, model.description or model.reference) for alias, model in sorted(settings.models.items())]
        names += [(entry.name, "downloaded") for entry in cached_entries(settings)]
        names += [(f"{name}/", f"{settings.provider(name).kind} provider") for name in settings.provider_names()]
    except Exception:  # a broken config must not break the user's shell; completion then offers nothing
        return []
    return [(name, help_text) for name, help_text in names if name.startswith(incomplete)]
