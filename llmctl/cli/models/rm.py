"""``llmctl models rm``: remove a downloaded model from the Hugging Face cache."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, app_state
from llmctl.errors import ExitStatus


def rm(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="hf/ORG/NAME (or ORG/NAME, or an alias of a downloaded model).")],
    revision: Annotated[
        str | None, typer.Option("--revision", help="Remove only this revision (commit sha, branch or tag).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove a downloaded model from the Hugging Face cache.

    Says how much space that freed. Asks first; --yes skips the question (needed when stdin is not a terminal).
    """
    from llmctl.domain import human_bytes
    from llmctl.errors import UsageError
    from llmctl.services.models.catalog import execute_removal, plan_model_removal

    removal = plan_model_removal(model, app_state(ctx).settings(), revision=revision)
    what = removal.repo_id + (f" revision {removal.revisions[0][:12]}" if not removal.whole_repo else "")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"Not removing {what}: confirmation needed, and stdin is not a terminal.",
                hint=f"Pass --yes to remove it without asking: llmctl models rm {model} --yes",
            )
        question = f"Remove {what} ({human_bytes(removal.freed_bytes)}) from {removal.path.parent}?"
        if not typer.confirm(question, default=False, err=True):
            output.status("Nothing removed.")
            raise typer.Exit(ExitStatus.FAILURE)
    freed = execute_removal(removal)
    if as_json:
        output.print_json(
            {
                "repo_id": removal.repo_id,
                "revisions": list(removal.revisions),
                "whole_repo": removal.whole_repo,
                "freed_bytes": freed,
            }
        )
        return
    output.out().print(f"Removed {what}; freed {human_bytes(freed)}.")
