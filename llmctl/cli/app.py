"""The composition root: every command and group of llmctl, on one screen.

Errors are translated here, once: an LlmctlError becomes one line on stderr
and its exit code; a traceback only with LLMCTL_DEBUG=1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from llmctl import __version__
from llmctl.cli import bench, chat, config, generate, models, tokens, usage
from llmctl.cli.options import AppState

app = typer.Typer(
    name="llmctl",
    help="One command line for every LLM you use: local Hugging Face models and hosted APIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help panels cost ~0.1 s of startup (rich, markdown-it, pygments),
    # which alone would break the `llmctl --help` < 0.15 s budget (benchmarks/startup.py).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="Config file. Default: $LLMCTL_CONFIG, else ~/.config/llmctl/config.toml."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """One command line for every LLM you use: local Hugging Face models and hosted APIs."""
    ctx.obj = AppState(config_override=config_file)


app.command("generate")(generate.generate)
app.command("chat")(chat.chat)
app.add_typer(models.app, name="models")
app.add_typer(config.app, name="config")
app.command("usage")(usage.usage)
app.add_typer(tokens.app, name="tokens")
app.command("bench")(bench.bench)


def main() -> None:
    """Entry point: run the app and turn our errors into one line and an exit code."""
    from llmctl.errors import LlmctlError
    from llmctl.services import interrupts

    debug = os.environ.get("LLMCTL_DEBUG") == "1"
    interrupts.install()  # SIGTERM/SIGHUP end a call like Ctrl-C: the text so far kept, the call recorded
    try:
        try:
            app(prog_name="llmctl")
        except SystemExit as exc:
            raise SystemExit(interrupts.termination_exit_code(exc.code)) from None
    except LlmctlError as exc:
        if debug:
            raise
        from llmctl.cli import output

        output.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        sys.exit(interrupts.exit_code(exc))
    except Exception as exc:  # a bug, not a user error: say so briefly
        if debug:
            raise
        from llmctl.cli import output

        output.error(
            f"Unexpected {type(exc).__name__}: {exc}",
            "This is a bug in llmctl. Run again with LLMCTL_DEBUG=1 for the traceback and report it.",
        )
        sys.exit(1)
