"""How ``llmctl compare`` looks: the table, pass rates per case, the answers, and a bar chart.

On a terminal: rich tables, answers side by side in columns when the window gives each model at
least ``MIN_ANSWER_COLUMN`` characters (else one after another under a rule), and bars for speed
and cost. Piped: tab-separated tables and the answers as raw text, each under a ``--- MODEL ---``
line; no bars.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from llmctl.cli import output
from llmctl.domain import RunStatus, plural

if TYPE_CHECKING:
    from llmctl.services.compare.report import ModelSummary, Report
    from llmctl.services.compare.run import Call, ModelEntry

MIN_ANSWER_COLUMN = 32
BAR_WIDTH = 24
NARROW_TABLE = 100  # columns below which the model table is printed as one block per model


def show(report: Report) -> None:
    _model_table(report)
    _judging(report)
    if report.has_checks:
        output.section_break()
        _case_table(report)
    for case in report.comparison.cases:
        output.section_break()
        _answers(report, case.name, case.prompt if len(report.comparison.cases) > 1 else None)
    if output.stdout_is_terminal():
        _bars(report)


def _model_table(report: Report) -> None:
    from llmctl.services.compare import formats as r

    columns = [
        output.Column("model"),
        output.Column("first token", justify="right", no_wrap=True),
        output.Column("total", justify="right", no_wrap=True),
        output.Column("out tok/s", justify="right", no_wrap=True),
        output.Column("tokens in/out", no_wrap=True),
        output.Column("cost/call", justify="right", no_wrap=True),
        output.Column("per 1,000", justify="right", no_wrap=True),
    ]
    with_checks = report.has_checks
    with_memory = any(m.local for m in report.models)
    if with_checks:
        columns.append(output.Column("pass rate", justify="right"))
    if with_memory:
        columns.append(output.Column("memory", no_wrap=True))
    columns.append(output.Column("status"))
    rows = []
    for m in report.models:
        row: list[output.Cell] = [
            r.model_cell(m),
            r.seconds_cell(m.first_token_s, as_ms=True),
            r.seconds_cell(m.total_s),
            r.rate_cell(m.output_tokens_per_s),
            r.tokens_cell(m),
            r.cost_cell(m.cost_per_call_usd),
            r.cost_cell(m.cost_per_thousand_usd),
        ]
        if with_checks:
            row.append(r.pass_cell(m.passed, m.checked))
        if with_memory:
            row.append(r.memory_cell(m))
        row.append(m.status)
        rows.append(row)
    runs = report.comparison.runs
    several = any(m.total_s is not None and m.total_s.count > 1 for m in report.models)
    title = f"Comparison of {plural(len(report.models), 'model')}" + (f", {runs} runs of each case" if runs > 1 else "")
    title += "; times are the median over a model's calls (min-max)" if several else ""
    if output.stdout_is_terminal() and output.out().width < NARROW_TABLE:
        # Too narrow for a column per figure (each would fold letter by letter): one block per model.
        output.out().print(title, style="table.title", soft_wrap=False)
        for row in rows:
            output.facts(zip((column.heading for column in columns[1:]), row[1:], strict=True), title=str(row[0]))
        return
    output.table(columns, rows, title=title)


def _judging(report: Report) -> None:
    """What the judge calls cost, apart from the models' own cost above."""
    from llmctl.domain import plural
    from llmctl.services.compare.formats import cost_cell

    for model in report.models:
        if model.judged:
            cost = cost_cell(model.judge_cost_usd) or "unknown"
            output.status(f"Judging {model.name}'s answers: {plural(model.judged, 'call')}, {cost} (not in its cost).")


def _case_table(report: Report) -> None:
    from llmctl.services.compare.formats import pass_cell

    comparison = report.comparison
    columns = [output.Column("case"), output.Column("checks")]
    columns += [output.Column(entry.name, justify="right", no_wrap=True) for entry in comparison.models]
    columns.append(output.Column("all", justify="right", no_wrap=True))
    rows = []
    for case, summary in zip(comparison.cases, report.cases, strict=True):
        row: list[output.Cell] = [case.name, ", ".join(summary.checks) or None]
        for entry in comparison.models:
            calls = [call for call in entry.calls if call.case == case.name]
            row.append(None if case.checks.empty else f"{sum(c.passed for c in calls)}/{comparison.runs}")
        row.append(pass_cell(summary.passed, summary.checked))
        rows.append(row)
    output.table(columns, rows, title="Pass rate per case")


def _first_call(entry: ModelEntry, case: str) -> Call | None:
    return next((call for call in entry.calls if call.case == case and call.run == 1), None)


def _answer_text(entry: ModelEntry, case: str) -> tuple[str, bool]:
    """The first run's answer, or what went wrong (and whether it is an error)."""
    call = _first_call(entry, case)
    if call is None:
        return f"(not run: {entry.error})" if entry.error else "(not run)", True
    if call.outcome.error == RunStatus.INTERRUPTED:
        return "(interrupted)" + (f"\n\n{call.outcome.text}" if call.outcome.text else ""), True
    if not call.ok:
        return f"(error: {call.outcome.error})" + (f"\n\n{call.outcome.text}" if call.outcome.text else ""), True
    failed = [check for check in call.checks if not check.passed]
    notes = "".join(f"\n\n✗ {check.name}: {check.detail}" for check in failed)
    return call.outcome.text + notes, False


def _answers(report: Report, case: str, prompt: str | None) -> None:
    entries = report.comparison.models
    if not output.stdout_is_terminal():
        lines = [] if prompt is None else [f"=== {case} ==="]
        for entry in entries:
            text, _ = _answer_text(entry, case)
            lines += [f"--- {entry.name} ---", text]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return
    from rich import box
    from rich.markdown import Markdown
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    console = output.out()
    if prompt is not None:
        console.print(Text(f"{case}: ", style="bold") + Text(prompt.strip()))

    def body(text: str, error: bool) -> Text | Markdown:
        return Text(text, style="red") if error else Markdown(text)

    if console.width >= len(entries) * MIN_ANSWER_COLUMN:
        grid = Table(box=box.SIMPLE_HEAD, show_edge=False, expand=True, padding=(0, 1))
        for entry in entries:
            grid.add_column(Text(entry.name), ratio=1, overflow="fold")
        grid.add_row(*(body(*_answer_text(entry, case)) for entry in entries))
        console.print(grid)
        return
    for entry in entries:
        console.print(Rule(Text(entry.name), align="left"))
        console.print(body(*_answer_text(entry, case)))


def _bars(report: Report) -> None:
    """Bars for the median whole call and the cost per call: the shortest bar is the best."""
    from rich.table import Table
    from rich.text import Text

    from llmctl.services.usage.accounting import format_cost

    def draw(title: str, values: list[tuple[ModelSummary, float | None]], show: Callable[[float], str]) -> None:
        known = [value for _, value in values if value is not None]
        if len(known) < 2 or not any(known):
            return  # nothing to compare: one figure, or all zero (free local models)
        top = max(known) or 1.0
        grid = Table.grid(padding=(0, 1))
        for _ in range(3):
            grid.add_column(no_wrap=True)
        for model, value in values:
            if value is None:
                grid.add_row(Text(model.name), Text("unknown", style="dim"), Text(""))
                continue
            cells = max(1, round(BAR_WIDTH * value / top)) if value > 0 else 0
            grid.add_row(Text(model.name), Text("█" * cells or "▏", style="cyan"), Text(show(value)))
        output.section_break()
        output.out().print(Text(title, style="table.title"))
        output.out().print(grid)

    draw(
        "Whole call (median)", [(m, m.total_s.median if m.total_s else None) for m in report.models], "{:,.2f} s".format
    )
    draw("Cost per call", [(m, m.cost_per_call_usd) for m in report.models], format_cost)
