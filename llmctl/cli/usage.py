"""``llmctl usage``: what the recorded calls used and cost."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import JsonOpt, app_state
from llmctl.errors import UsageError

if TYPE_CHECKING:  # the services are imported where used: sqlite3 and csv cost `llmctl --help` time
    from llmctl.services.usage.ledger import GroupBy, Totals, UsageReport
    from llmctl.services.usage.report import ReportRequest


class GroupChoice(StrEnum):
    MODEL = "model"
    PROVIDER = "provider"
    DAY = "day"
    COMMAND = "command"
    CLIENT = "client"


def _grouping(value: str) -> GroupChoice:
    # Parsed here, not by typer's enum support, whose message for `--by week` is a pydantic-style
    # "Value error, 'week' is not one of ..." rather than the choices in plain words.
    try:
        return GroupChoice(value.strip().lower())
    except ValueError:
        choices = [c.value for c in GroupChoice]
        raise typer.BadParameter(
            f"{value!r} is not a way to group; use {', '.join(choices[:-1])} or {choices[-1]}."
        ) from None


def usage(
    ctx: typer.Context,
    by: Annotated[
        GroupChoice,
        typer.Option(
            "--by",
            parser=_grouping,
            metavar="model|provider|day|command|client",
            help="Group by model, provider, day (UTC date), command or client (who asked `llmctl serve`).",
        ),
    ] = GroupChoice.MODEL,
    since: Annotated[
        str | None, typer.Option("--since", help="From this time: 2025-01-31, 2025-01-31T18:00, or an age: 24h, 7d.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Up to this time (a bare date includes that whole day).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only calls to this model: MODEL-ID or PROVIDER/MODEL-ID.")
    ] = None,
    provider: Annotated[str | None, typer.Option("--provider", "-p", help="Only calls to this provider.")] = None,
    command: Annotated[
        str | None, typer.Option("--command", help="Only calls made by this command (generate, chat).")
    ] = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Write the raw rows as CSV to stdout.")] = False,
) -> None:
    """Show calls, tokens and cost from the usage ledger.

    Every model call llmctl makes is recorded (never API keys; the prompt text only with
    [usage] store_text = true). Cost comes from the config's prices or genai-prices' table;
    "—" is unknown. A "≥" marks a sum that leaves out calls whose count is unknown.

    Examples: `llmctl usage --since 7d --by day`, `llmctl usage --provider openai --json`,
    `llmctl usage --csv > usage.csv`.
    """
    from llmctl.services.usage.report import (
        ReportRequest,
        as_recorded,
        build_report,
        read_records,
        report_json,
        write_csv,
    )

    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be used together.")
    group_by: GroupBy = by.value
    if model is not None:
        model = as_recorded(app_state(ctx).settings(), model)
    request = ReportRequest(by=group_by, since=since, until=until, model=model, provider=provider, command=command)
    query = request.query()
    if as_csv:
        write_csv(read_records(query), sys.stdout)
        return
    report = build_report(query, group_by)
    if as_json:
        output.print_json(report_json(report, query))
        return
    if report.totals.calls == 0:
        output.status("No calls recorded" + (" for these filters." if _filtered(request) else " yet."))
        return
    _print_table(report)


def _filtered(request: ReportRequest) -> bool:
    return any((request.since, request.until, request.model, request.provider, request.command))


def _tokens(total: int, known: int, unknown: int) -> output.Cell:
    """A sum of counts; "≥" when some calls' counts are unknown, unknown when no call's is known."""
    if known == 0 and unknown:
        return None
    return f"≥{total:,}" if unknown else total


def _cost(totals: Totals) -> str | None:
    from llmctl.services.usage.report import format_cost

    if totals.cost_calls == 0:
        return None
    return ("≥" if totals.unknown_cost else "") + format_cost(totals.cost_usd)


_NUMBERS = ("calls", "input", "output", "total tokens", "cost", "failed")


def _print_table(report: UsageReport) -> None:
    from llmctl.domain import plural
    from llmctl.services.usage.report import sorted_groups

    totals = report.totals
    label = {"day": "day (UTC)", "model": "provider/model"}.get(report.by, report.by)
    output.table(
        (output.Column(label), *(output.Column(name, justify="right", no_wrap=True) for name in _NUMBERS)),
        ((key, *_cells(t)) for key, t in sorted_groups(report)),
        footer=("total", *_cells(totals)),
    )
    if totals.unknown_tokens:
        output.status(
            f"{plural(totals.unknown_tokens, 'call')} with unknown token counts "
            f"{'is' if totals.unknown_tokens == 1 else 'are'} left out of the token sums (≥)."
        )
    if totals.unknown_cost:
        output.status(
            f"{plural(totals.unknown_cost, 'call')} of unknown cost (no known price, or unknown token counts) "
            f"{'is' if totals.unknown_cost == 1 else 'are'} left out of the cost (≥ or —); price a model with "
            "input_price_per_mtok / output_price_per_mtok in the config."
        )


def _cells(t: Totals) -> list[output.Cell]:
    return [
        t.calls,
        _tokens(t.input_tokens, t.input_calls, t.unknown_input),
        _tokens(t.output_tokens, t.output_calls, t.unknown_output),
        _tokens(t.total_tokens, t.total_calls, t.unknown_tokens),
        _cost(t),
        t.errors + t.interrupted,
    ]
