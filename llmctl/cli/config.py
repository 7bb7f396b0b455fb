"""``llmctl config``: one TOML file, validated."""

from __future__ import annotations

from typing import Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, app_state
from llmctl.services import config_service

app = typer.Typer(help="Create, show and change the config file.", no_args_is_help=True)


@app.command("init")
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config file (mode 0600)."""
    path = app_state(ctx).config_path
    config_service.init_config(path, force=force)
    output.status(f"Wrote {path}")


@app.command("path")
def path(ctx: typer.Context) -> None:
    """Print where the config file is (it may not exist yet)."""
    output.out().print(str(app_state(ctx).config_path), markup=False)


@app.command("show")
def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Validate the config and print the settings in effect, secrets redacted."""
    state = app_state(ctx)
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
    key: Annotated[str, typer.Argument(help="Dotted key, e.g. defaults.temperature or models.l3.id.")],
    value: Annotated[str, typer.Argument(help='A TOML value (0.2, true, "text"); bare words are strings.')],
) -> None:
    """Set KEY to VALUE; the whole file is validated before it is written."""
    path = app_state(ctx).config_path
    stored = config_service.set_value(path, key, value)
    output.status(f"Set {key} = {stored!r} in {path}")
