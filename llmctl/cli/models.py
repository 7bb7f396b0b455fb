"""``llmctl models``: the models you can name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.cli import models_download, models_info, models_rm, output
from llmctl.cli.options import JsonOpt, app_state

if TYPE_CHECKING:
    from llmctl.services.model_catalog import ModelEntry

app = typer.Typer(help="List, download, inspect, load and remove models.", no_args_is_help=True)


def _size(entry: ModelEntry) -> str:
    if entry.size_bytes is None:
        return "—"
    return f"{entry.size_bytes / 1e6:,.1f} MB" if entry.size_bytes < 1e9 else f"{entry.size_bytes / 1e9:,.2f} GB"


def _notes(entry: ModelEntry) -> str:
    notes = []
    if entry.quantization:
        notes.append(entry.quantization)
    if entry.input_price_per_mtok is not None and entry.output_price_per_mtok is not None:
        notes.append(f"${entry.input_price_per_mtok:g} / ${entry.output_price_per_mtok:g} per Mtok in/out")
    if entry.description:
        notes.append(entry.description)
    return "; ".join(notes)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    remote: Annotated[
        str | None,
        typer.Option("--remote", metavar="PROVIDER", help="Ask a hosted provider which models it serves (network)."),
    ] = None,
) -> None:
    """List every model you can pass to -m: the demo model, config aliases, downloaded models, hosted providers.

    With --remote PROVIDER, ask that hosted provider's API which models it serves.
    """
    if remote is not None:
        from llmctl.cli.models_remote import show_remote

        show_remote(app_state(ctx).settings(), remote, as_json=as_json)
        return
    from llmctl.services.model_catalog import DEMO_SWITCH_HINT, HOSTED_HINT, list_models

    entries = list_models(app_state(ctx).settings())
    if as_json:
        output.print_json([e.to_json() for e in entries])
        return
    from rich.table import Table

    from llmctl.services.units import human_count

    table = Table(title="Models", title_justify="left")
    for column in ("name", "provider", "model", "params", "context", "size"):
        table.add_column(column, overflow="fold", no_wrap=column in ("name", "params", "context", "size"))
    table.add_column("notes", overflow="fold")
    for e in entries:
        name = f"{e.name} (default)" if e.is_default else e.name
        context = "—" if e.context_window is None else f"{e.context_window:,}"
        params = "—" if e.parameters is None else human_count(e.parameters)
        table.add_row(name, e.provider, e.model_id, params, context, _size(e), _notes(e))
    output.out().print(table)
    if any(e.is_default and e.source == "built-in" for e in entries):
        output.status(DEMO_SWITCH_HINT)
    if any(e.source == "provider" for e in entries):
        output.status(HOSTED_HINT)


app.command("download")(models_download.download)
app.command("info")(models_info.info)
app.command("load")(models_info.load)
app.command("rm")(models_rm.rm)
