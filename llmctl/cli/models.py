"""``llmctl models``: the models you can name."""

from __future__ import annotations

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, app_state
from llmctl.services.model_catalog import DEMO_SWITCH_HINT, ModelEntry, list_models

app = typer.Typer(help="List and inspect models.", no_args_is_help=True)


def _size(entry: ModelEntry) -> str:
    if entry.size_bytes is None:
        return "—"
    return f"{entry.size_bytes / 1e6:,.1f} MB" if entry.size_bytes < 1e9 else f"{entry.size_bytes / 1e9:,.2f} GB"


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List every model you can pass to -m: the built-in demo model and config aliases."""
    entries = list_models(app_state(ctx).settings())
    if as_json:
        output.print_json([e.to_json() for e in entries])
        return
    from rich.table import Table

    table = Table(title="Models", title_justify="left")
    for column in ("name", "provider", "model", "architecture", "context", "size", "notes"):
        table.add_column(column, overflow="fold")
    for e in entries:
        name = f"{e.name} (default)" if e.is_default else e.name
        context = "—" if e.context_window is None else f"{e.context_window:,}"
        table.add_row(name, e.provider, e.model_id, e.architecture or e.kind, context, _size(e), e.description or "")
    output.out().print(table)
    if any(e.is_default and e.source == "built-in" for e in entries):
        output.status(DEMO_SWITCH_HINT)
