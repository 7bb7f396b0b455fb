"""``llmctl models list --remote PROVIDER``: the table (or JSON) of a hosted provider's models."""

from __future__ import annotations

from llmctl.cli import output
from llmctl.config import Settings


def show_remote(settings: Settings, provider: str, *, as_json: bool) -> None:
    from llmctl.services.remote_models import list_remote

    models = list_remote(settings, provider)
    if as_json:
        output.print_json([m.to_json() for m in models])
        return
    from rich.table import Table

    table = Table(title=f"Models served by {provider}", title_justify="left")
    for column in ("model", "name", "owned by", "created", "context"):
        table.add_column(column, overflow="fold")
    for m in models:
        context = "—" if m.context_window is None else f"{m.context_window:,}"
        table.add_row(m.id, m.display_name or "—", m.owned_by or "—", m.created or "—", context)
    output.out().print(table)
    noun = "model" if len(models) == 1 else "models"
    output.status(f"{len(models)} {noun}. Use one with: llmctl generate -m {provider}/MODEL")
