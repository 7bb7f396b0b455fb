"""``llmctl config``: one TOML file, validated."""

from __future__ import annotations

from typing import Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, app_state
from llmctl.errors import UsageError

app = typer.Typer(help="Create, show and change the config file.", no_args_is_help=True)


@app.command("init")
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    example: Annotated[
        bool, typer.Option("--example", help="Write the full example (every key, commented) instead.")
    ] = False,
) -> None:
    """Write a commented starter config file (mode 0600)."""
    path = app_state(ctx).config_path
    from llmctl.services import config_service  # lazy: pydantic is slow to import

    config_service.init_config(path, force=force, example=example)
    output.status(f"Wrote {path}")


@app.command("path")
def path(
    ctx: typer.Context,
    example: Annotated[
        bool, typer.Option("--example", help="Print where the example config (every key) is installed instead.")
    ] = False,
) -> None:
    """Print where the config file is (it may not exist yet)."""
    from llmctl.paths import example_config_path

    shown = example_config_path() if example else app_state(ctx).config_path
    output.out().print(str(shown), markup=False)


@app.command("show")
def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Validate the config and print the settings in effect, secrets redacted."""
    state = app_state(ctx)
    from llmctl.services import config_service  # lazy: pydantic is slow to import

    data = config_service.effective_config(state.settings())
    if as_json:
        output.print_json(data)
        return
    if not state.config_path.exists():
        output.status(f"# {state.config_path} does not exist; these are the defaults.")
    else:
        output.status(f"# {state.config_path}, with defaults filled in")
    output.out().print(config_service.render_toml(data), markup=False, end="")


@app.command("set")
def set_(
    ctx: typer.Context,
    pairs: Annotated[
        list[str],
        typer.Argument(help='KEY VALUE [KEY VALUE ...]: dotted keys and TOML values (0.2, true, "text").'),
    ],
) -> None:
    """Set one or more keys; the whole file is validated before anything is written.

    Values are TOML (0.2, true, [1, 2]); bare words are strings. Several pairs at
    once create a table in one step:
    `llmctl config set models.l3.provider hf models.l3.id meta-llama/Meta-Llama-3-8B-Instruct`
    """
    if len(pairs) % 2:
        raise UsageError("config set takes KEY VALUE pairs.", hint="e.g. llmctl config set defaults.temperature 0.2")
    state = app_state(ctx)
    path = state.config_path
    from llmctl.services import config_service  # lazy: pydantic is slow to import

    pairs_given = list(zip(pairs[::2], pairs[1::2], strict=True))
    for key, value in config_service.set_values(path, pairs_given, must_exist=state.config_must_exist):
        output.status(f"Set {key} = {config_service.shown_value(key, value)!r} in {path}")
