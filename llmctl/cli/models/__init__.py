"""``llmctl models``: the models you can name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.cli import output
from llmctl.cli.models import download as models_download
from llmctl.cli.models import info as models_info
from llmctl.cli.models import rm as models_rm
from llmctl.cli.options import JsonOpt, app_state

if TYPE_CHECKING:
    from llmctl.services.models.catalog import ModelEntry

app = typer.Typer(help="List, download, inspect, load and remove models.", no_args_is_help=True)


def _row(entry: ModelEntry) -> tuple[output.Cell, ...]:
    """The cells of one model; a provider row (``NAME/MODEL``) has no size or parameters of its own."""
    from llmctl.domain import human_bytes, human_count
    from llmctl.provider_specs import spec_for

    if entry.source == "provider":
        return (entry.name, entry.provider, entry.model_id, "", "", "", _notes(entry))
    on_disk = spec_for(entry.kind).local
    return (
        entry.name,
        entry.provider,
        entry.model_id,
        None if entry.parameters is None else human_count(entry.parameters),
        entry.context_window,
        (None if entry.size_bytes is None else human_bytes(entry.size_bytes)) if on_disk else "",
        _notes(entry),
    )


def _notes(entry: ModelEntry) -> str:
    notes = ["default"] if entry.is_default else []
    if entry.quantization:
        notes.append(entry.quantization)
    if entry.input_price_per_mtok is not None and entry.output_price_per_mtok is not None:
        notes.append(f"${entry.input_price_per_mtok:g} / ${entry.output_price_per_mtok:g} per Mtok in/out")
    if entry.description:
        notes.append(entry.description)
    return "; ".join(notes)


LIST_COLUMNS = (
    output.Column("name"),
    output.Column("provider"),
    output.Column("model"),
    output.Column("params", justify="right", no_wrap=True),
    output.Column("context", justify="right", no_wrap=True),
    output.Column("size", justify="right", no_wrap=True),
    output.Column("notes"),
)


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
        from llmctl.cli.models.remote import show_remote

        show_remote(app_state(ctx).settings(), remote, as_json=as_json)
        return
    from llmctl.services.models.catalog import DEMO_SWITCH_HINT, HOSTED_HINT, list_models

    entries = list_models(app_state(ctx).settings())
    if as_json:
        output.print_json([e.to_json() for e in entries])
        return
    output.table(LIST_COLUMNS, (_row(e) for e in entries), title="Models")
    if any(e.is_default and e.source == "built-in" for e in entries):
        output.status(DEMO_SWITCH_HINT)
    if any(e.source == "provider" for e in entries):
        output.status(HOSTED_HINT)


app.command("download")(models_download.download)
app.command("info")(models_info.info)
app.command("load")(models_info.load)
app.command("rm")(models_rm.rm)
