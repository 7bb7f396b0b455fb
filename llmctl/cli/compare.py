"""``llmctl compare``: the same prompt (or a suite of cases) on several models, measured side by side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llmctl.cli import output
from llmctl.cli.options import (
    IgnoreBudgetOpt,
    MaxTokensOpt,
    SeedOpt,
    SystemOpt,
    TemperatureOpt,
    TopPOpt,
    app_state,
)
from llmctl.errors import ExitStatus

if TYPE_CHECKING:
    from llmctl.services.compare.cases import Case
    from llmctl.services.compare.report import Report
    from llmctl.services.compare.run import CompareOptions, ModelEntry


def compare(
    ctx: typer.Context,
    prompt: Annotated[
        str | None, typer.Argument(help="The prompt. Piped stdin is appended after a blank line.")
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", metavar="MODEL", help="A model to compare (repeat: -m demo -m gpt -m claude)."),
    ] = None,
    system: SystemOpt = None,
    temperature: TemperatureOpt = None,
    top_p: TopPOpt = None,
    max_tokens: MaxTokensOpt = None,
    seed: SeedOpt = None,
    cases: Annotated[
        Path | None, typer.Option("--cases", help="A suite of use cases: cases.toml or cases.jsonl.")
    ] = None,
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, max=100, help="Run each case N times.")] = 1,
    fail_under: Annotated[
        float | None,
        typer.Option(
            "--fail-under",
            min=0.0,
            max=1.0,
            metavar="RATE",
            help="Exit 1 when a model's pass rate is below RATE (0-1).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the table as CSV.")] = False,
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print a Markdown report: the table and the answers.")
    ] = False,
    ignore_budget: IgnoreBudgetOpt = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before a comparison estimated above $0.10.")
    ] = False,
) -> None:
    """Run PROMPT (or every case of --cases) on each -m model and compare speed, cost and answers.

    Hosted models run at the same time; local models one after another, so two never
    compete for memory. The table shows time to first token, the whole call, output
    tokens per second, tokens in/out (and where the counts come from), the cost of a
    call and of 1,000 such calls (unknown stays unknown), and the fastest and cheapest.
    Answers follow, side by side when the terminal is wide enough. A model that fails
    gets its error in its row; the others still run. Every call is one row in the
    usage ledger (command `compare`).
    Exit codes: 0 ok, 1 a model failed or scored below --fail-under, 2 usage error, 130 interrupted.
    Example: llmctl compare -m demo -m openai/gpt-4o-mini --cases cases.toml --runs 3
    """
    from llmctl.errors import UsageError
    from llmctl.services.compare.cases import load_cases, with_default_system
    from llmctl.services.compare.judge import judge_calls, resolve_judges
    from llmctl.services.compare.report import summarize
    from llmctl.services.compare.run import CompareOptions, prepare_models, run_comparison, single_case
    from llmctl.services.generation import compose_prompt, read_stdin, resolve_params

    chosen = [name for name, on in (("--json", as_json), ("--csv", as_csv), ("--markdown", as_markdown)) if on]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} cannot be combined; choose one output format.")
    if not models:
        raise UsageError("No models to compare.", hint='Name each with -m: llmctl compare -m demo -m MODEL "..."')
    settings = app_state(ctx).settings()
    if cases is not None:
        if prompt is not None:
            raise UsageError("Give either a PROMPT or --cases, not both.", hint="Add the prompt to the cases file.")
        suite = with_default_system(load_cases(cases), system)
    else:
        piped = None if sys.stdin is None or sys.stdin.isatty() else read_stdin(sys.stdin.buffer)
        suite = [single_case(compose_prompt(prompt, piped), system)]
    params = resolve_params(settings.defaults, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    judges = resolve_judges(suite, settings)
    entries = prepare_models(list(dict.fromkeys(models)), settings)
    given = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed}
    flags = frozenset(name for name, value in given.items() if value is not None)
    options = CompareOptions(params, runs=runs, ignore_budget=ignore_budget, flags=flags)
    _preflight(entries, suite, options, yes=yes)

    total = len(entries) * len(suite) * runs
    done = 0
    with output.err().status(f"Comparing {len(entries)} models: 0 of {total} calls…") as progress:

        def on_call(_call: object) -> None:
            nonlocal done
            done += 1
            progress.update(f"Comparing {len(entries)} models: {done} of {total} calls…")

        comparison = run_comparison(settings, entries, suite, options, on_call=on_call)
        if judges and not comparison.interrupted:
            progress.update(f"Judging with {', '.join(judges)}…")
            judge_calls(settings, comparison, judges, ignore_budget=ignore_budget)
    report = summarize(comparison)
    for warning in comparison.warnings:
        output.warning(warning)
    _print(report, as_json=as_json, as_csv=as_csv, as_markdown=as_markdown)
    _exit(report, fail_under)


def _preflight(entries: list[ModelEntry], suite: list[Case], options: CompareOptions, *, yes: bool) -> None:
    """Print what the hosted calls may cost; on a terminal, ask first when that is above the threshold."""
    from llmctl.services.compare.estimate import CONFIRM_ABOVE_USD, estimate_cost

    estimate = estimate_cost(entries, suite, options)
    if not estimate.models:
        return
    for line in estimate.lines():
        output.status(line)
    interactive = sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty()
    if yes or not interactive or not estimate.needs_confirmation():
        return
    if not typer.confirm(f"That may be above ${CONFIRM_ABOVE_USD:.2f}. Run it?", default=False, err=True):
        output.status("Cancelled; nothing was run.")
        raise typer.Exit(ExitStatus.FAILURE)


def _print(report: Report, *, as_json: bool, as_csv: bool, as_markdown: bool) -> None:
    from llmctl.cli import compare_output
    from llmctl.services.compare.formats import csv_text, markdown_text
    from llmctl.services.compare.report import json_text

    if as_json or as_csv or as_markdown:
        text = json_text(report) if as_json else csv_text(report) if as_csv else markdown_text(report)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    compare_output.show(report)


def _exit(report: Report, fail_under: float | None) -> None:
    from llmctl.domain import plural

    if report.comparison.interrupted:
        output.status("Interrupted: the calls made so far are above (and in the ledger).")
        raise typer.Exit(ExitStatus.INTERRUPTED)
    failed = [m for m in report.models if m.ok_calls < m.planned_calls]
    if failed:
        output.error(
            f"{plural(len(failed), 'model')} of {len(report.models)} failed: {', '.join(m.name for m in failed)}."
        )
        for model in failed:
            if model.hint:
                output.status(f"{model.name}: {model.hint}")
    below = report.below(fail_under) if fail_under is not None else []
    for model in below:
        output.error(
            f"{model.name} passed {model.passed} of {model.checked} checked calls, below --fail-under {fail_under:g}."
        )
    if fail_under is not None and not report.has_checks:
        output.warning("--fail-under has nothing to judge: no case has checks.")
    if failed or below:
        raise typer.Exit(ExitStatus.FAILURE)
