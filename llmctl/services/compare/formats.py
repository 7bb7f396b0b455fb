"""The report's cells (shared by the terminal table and Markdown), CSV and Markdown.

Unknown values stay unknown: an empty CSV field, "unknown" in Markdown, never $0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from llmctl.domain import human_bytes
from llmctl.services.compare.report import ModelSummary, Report, Spread
from llmctl.services.usage.report import format_cost

# -- CSV and the table's cells ---------------------------------------------------------------------------------

CSV_HEADER = (
    "model",
    "provider",
    "status",
    "first_token_s",
    "total_s",
    "output_tokens_per_s",
    "input_tokens",
    "output_tokens",
    "token_source",
    "cost_usd",
    "cost_per_1000_calls_usd",
    "pass_rate",
    "fastest",
    "cheapest",
)


def csv_text(report: Report) -> str:
    """One row per model (medians); unknown values are empty fields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for m in report.models:
        writer.writerow(
            [
                m.name,
                m.provider or "",
                m.status,
                _plain(_median(m.first_token_s), 4),
                _plain(_median(m.total_s), 4),
                _plain(_median(m.output_tokens_per_s), 2),
                "" if m.input_tokens is None else m.input_tokens,
                "" if m.output_tokens is None else m.output_tokens,
                m.token_source or "",
                "" if m.cost_usd is None else repr(m.cost_usd),
                "" if m.cost_per_thousand_usd is None else repr(m.cost_per_thousand_usd),
                "" if m.pass_rate is None else f"{m.pass_rate:.4g}",
                str(m.fastest).lower(),
                str(m.cheapest).lower(),
            ]
        )
    return buffer.getvalue()


def _median(value: Spread | None) -> float | None:
    return None if value is None else value.median


def _plain(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def seconds_cell(value: Spread | None, *, as_ms: bool = False) -> str | None:
    """``0.412 s`` or ``412 ms``; with several runs ``median (min-max)``."""
    if value is None:
        return None

    def show(seconds: float) -> str:
        return f"{seconds * 1000:,.0f}" if as_ms else f"{seconds:,.2f}"

    unit = " ms" if as_ms else " s"
    if value.count > 1 and value.min != value.max:
        return f"{show(value.median)}{unit} ({show(value.min)}-{show(value.max)})"
    return f"{show(value.median)}{unit}"


def rate_cell(value: Spread | None) -> str | None:
    return None if value is None else f"{value.median:,.1f}"


def tokens_cell(model: ModelSummary) -> str | None:
    if model.input_tokens is None and model.output_tokens is None:
        return None
    shown_in = "?" if model.input_tokens is None else f"{model.input_tokens:,}"
    shown_out = "?" if model.output_tokens is None else f"{model.output_tokens:,}"
    return f"{shown_in} / {shown_out} ({model.token_source})"


def cost_cell(usd: float | None) -> str | None:
    return None if usd is None else format_cost(usd)


def pass_cell(passed: int, checked: int) -> str | None:
    if checked == 0:
        return None
    return f"{passed / checked:.0%} ({passed}/{checked})"


def memory_cell(model: ModelSummary) -> str | None:
    """A local model's estimated memory and whether it fits; "hosted" for an API; unknown otherwise."""
    memory = model.memory
    if not model.local:
        return "hosted" if model.provider is not None else None
    if memory is None:
        return None
    size = human_bytes(memory.needed_bytes, binary=True)
    verdict = {True: "fits", False: "does not fit", None: "fit unknown"}[memory.fits]
    return f"{size} {memory.precision}, {verdict}"


def model_cell(model: ModelSummary) -> str:
    marks = [mark for mark, on in (("fastest", model.fastest), ("cheapest", model.cheapest)) if on]
    return model.name + (f" ({', '.join(marks)})" if marks else "")


# -- Markdown --------------------------------------------------------------------------------------------------


def markdown_text(report: Report) -> str:
    """A report to paste into a document or an issue: the table, the pass rates, then every answer."""
    headings = ["Model", "First token", "Total", "Output tok/s", "Tokens in / out", "Cost", "Per 1,000", "Status"]
    with_checks = report.has_checks
    if with_checks:
        headings.insert(-1, "Pass rate")
    rows = []
    for m in report.models:
        cells = [
            model_cell(m),
            seconds_cell(m.first_token_s, as_ms=True),
            seconds_cell(m.total_s),
            rate_cell(m.output_tokens_per_s),
            tokens_cell(m),
            cost_cell(m.cost_per_call_usd),
            cost_cell(m.cost_per_thousand_usd),
            m.status,
        ]
        if with_checks:
            cells.insert(-1, pass_cell(m.passed, m.checked))
        rows.append(cells)
    lines = ["# Model comparison", "", *_md_table(headings, rows)]
    if with_checks:
        lines += ["", "## Cases", ""]
        case_rows = [[c.name, ", ".join(c.checks), pass_cell(c.passed, c.checked)] for c in report.cases]
        lines += _md_table(["Case", "Checks", "Pass rate"], case_rows)
    lines += ["", "## Answers"]
    for case in report.comparison.cases:
        if len(report.comparison.cases) > 1:
            lines += ["", f"### {case.name}", "", f"> {_md_quote(case.prompt)}"]
        for entry in report.comparison.models:
            if not entry.calls:
                lines += ["", f"**{entry.name}** (not run: {entry.error})"]
            for call in entry.calls:
                if call.case != case.name or call.run != 1:
                    continue
                lines += ["", f"**{entry.name}**" + ("" if call.ok else f" (error: {call.outcome.error})"), ""]
                lines += _md_answer(call.outcome.text)
                failed = [c for c in call.checks if not c.passed] if call.ok else []
                if failed:
                    lines += ["", "Failed checks: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)]
    return "\n".join(lines) + "\n"


def _md_table(headings: Sequence[str], rows: Sequence[Sequence[str | None]]) -> list[str]:
    def cell(value: str | None) -> str:
        return "unknown" if value is None else value.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headings) + " |", "|" + "|".join("---" for _ in headings) + "|"]
    return lines + ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]


def _md_quote(text: str) -> str:
    return text.strip().replace("\n", "\n> ")


def _md_answer(text: str) -> list[str]:
    """The answer in a fence longer than any run of backticks inside it, so it cannot break out."""
    longest = max((len(run) for run in text.split("\n") if set(run) == {"`"}), default=0)
    run, current = 0, 0
    for char in text:
        current = current + 1 if char == "`" else 0
        run = max(run, current)
    fence = "`" * max(3, run + 1, longest + 1)
    return [fence, text.rstrip("\n"), fence] if text else ["(no answer)"]
