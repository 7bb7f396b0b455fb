"""``llmctl models list --remote PROVIDER``: the table (or JSON) of a hosted provider's models."""

from __future__ import annotations

from llmctl.cli import output
from llmctl.config import Settings


def show_remote(settings: Settings, provider: str, *, as_json: bool) -> None:
    from llmctl.services.models.catalog import list_remote

    models = list_remote(settings, provider)
    if as_json:
        output.print_json([m.to_json() for m in models])
        return
    from llmctl.domain import plural

    output.table(
        (
            output.Column("model"),
            output.Column("name"),
            output.Column("owned by"),
            output.Column("created", no_wrap=True),
            output.Column("context", justify="right", no_wrap=True),
        ),
        ((m.id, m.display_name, m.owned_by, m.created, m.context_window) for m in models),
        title=f"Models served by {provider}",
    )
    output.status(f"{plural(len(models), 'model')}. Use one with: llmctl generate -m {provider}/MODEL")
