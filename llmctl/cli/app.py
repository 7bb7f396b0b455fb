"""The composition root: every command and group of llmctl, on one screen.

Errors are translated here, once: an LlmctlError becomes one line on stderr
and its exit code; a traceback only with LLMCTL_DEBUG=1.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from llmctl import __version__
from llmctl.cli import bench, chat, compare, completion, config, generate, logs, models, tokens, usage
from llmctl.cli.options import AppState
from llmctl.cli.stdio import (
    GuardedStdout,
    failure_message,
    install_guard,
    reject_undecodable_arguments,
    reserve_standard_descriptors,
    silence_stdout,
)
from llmctl.errors import ExitStatus

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
app.add_typer(logs.app, name="logs")
app.add_typer(tokens.app, name="tokens")
app.command("bench")(bench.bench)
app.command("compare")(compare.compare)
app.command("completion")(completion.completion)


def main() -> None:
    """Entry point: run the app and turn our errors into one line and an exit code.

    Also the one place that checks the arguments' encoding and watches stdout, so that
    every command, not each one on its own, ends quietly when its reader goes away
    (``llmctl usage --csv | head -1``) and says so when stdout is closed or full.
    """
    reserve_standard_descriptors()
    guard, original_stdout = install_guard()
    try:
        code = _run(guard)
        with contextlib.suppress(OSError):  # the guard records it
            guard.flush()  # buffered output a full disk refuses fails here, not at interpreter exit
    finally:
        sys.stdout = original_stdout
    if guard.failure is not None:
        silence_stdout(original_stdout)
        message = failure_message(guard.failure)
        if message is None:
            # The reader went away (| head): not a failure. rich and click report it as 1;
            # an interrupt (130) or a usage error (2) keeps its own code.
            code = ExitStatus.OK if code in (ExitStatus.OK, ExitStatus.FAILURE) else code
        else:
            _print_error(message, None)
            code = ExitStatus.FAILURE
    sys.exit(code)


def _run(guard: GuardedStdout) -> int:
    """Run the app; the exit code it ends with (an error already printed as one line)."""
    from llmctl.errors import LlmctlError
    from llmctl.services import interrupts

    debug = os.environ.get("LLMCTL_DEBUG") == "1"
    interrupts.install()  # SIGTERM/SIGHUP end a call like Ctrl-C: the text so far kept, the call recorded
    try:
        reject_undecodable_arguments(sys.argv[1:])
        completion.enable_if_requested()
        app(prog_name="llmctl")
    except SystemExit as exc:
        code = interrupts.termination_exit_code(exc.code)
        return code if isinstance(code, int) else (ExitStatus.OK if code is None else ExitStatus.FAILURE)
    except LlmctlError as exc:
        if debug:
            raise
        _print_error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        return interrupts.exit_code(exc)
    except Exception as exc:  # a bug, not a user error: say so briefly
        if guard.failure is not None:
            return ExitStatus.FAILURE  # stdout failed and this is the consequence; main() reports it
        if debug:
            raise
        _print_error(
            f"Unexpected {type(exc).__name__}: {exc}",
            "This is a bug in llmctl. Run again with LLMCTL_DEBUG=1 for the traceback and report it.",
        )
        return ExitStatus.FAILURE
    return ExitStatus.OK


def _print_error(message: str, hint: str | None) -> None:
    from llmctl.cli import output

    output.error(message, hint)
