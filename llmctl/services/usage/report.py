"""``llmctl usage``'s logic: parse the time range, summarize the ledger, shape the answer.

Sums over calls whose counts are unknown do not pretend: each figure comes with how many
calls it leaves out, and a figure no call knows is ``None``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from llmctl.errors import UsageError
from llmctl.services.usage.ledger import (
    COLUMNS,
    GroupBy,
    LedgerError,
    LedgerRecord,
    Totals,
    UsageLedger,
    UsageQuery,
    UsageReport,
)

if TYPE_CHECKING:
    from llmctl.config import Settings

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, *, now: datetime | None = None, end_of_day: bool = False) -> float:
    """``7d``, ``24h``, ``30m``, ``2w`` (ago), an ISO date or an ISO date-time → unix time.

    Dates and naive date-times are local time. With ``end_of_day`` a bare date means the
    end of that day (so ``--until 2025-01-31`` includes the 31st). A time outside what a
    calendar date can hold (``99999999999d`` ago, the day after 9999-12-31) is a usage error.
    """
    try:
        moment = _parse_moment(text, (now or datetime.now()).astimezone(), end_of_day=end_of_day)
        moment.astimezone(UTC)  # the ledger compares in UTC: that conversion must work too
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):  # OSError: the platform's time functions refuse the year
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise UsageError(
            f"The time {shown!r} is out of range.",
            hint="Use an age up to a few thousand years (e.g. 3650d) or a date between 0002-01-01 and 9999-12-30.",
        ) from None


def _parse_moment(text: str, now: datetime, *, end_of_day: bool) -> datetime:
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2).lower()
        return now - timedelta(seconds=amount * _UNIT_SECONDS[unit])
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return datetime.combine(day + timedelta(days=1) if end_of_day else day, time()).astimezone()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise UsageError(
            f"Cannot read the time {text!r}.",
            hint="Use a date (2025-01-31), a date and time (2025-01-31T18:00), or an age: 30m, 24h, 7d, 2w.",
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


@dataclass(frozen=True)
class ReportRequest:
    by: GroupBy = "model"
    since: str | None = None
    until: str | None = None
    model: str | None = None
    provider: str | None = None
    command: str | None = None

    def query(self, now: datetime | None = None) -> UsageQuery:
        since = None if self.since is None else parse_when(self.since, now=now)
        until = None if self.until is None else parse_when(self.until, now=now, end_of_day=True)
        if since is not None and until is not None and since >= until:
            raise UsageError("--since must be before --until.")
        return UsageQuery(since=since, until=until, model=self.model, provider=self.provider, command=self.command)


def build_report(query: UsageQuery, by: GroupBy, ledger: UsageLedger | None = None) -> UsageReport:
    """Summarize the ledger (an empty report when nothing was recorded yet). Never writes to it."""
    own = ledger is None
    target = UsageLedger(read_only=True) if ledger is None else ledger
    try:
        if not target.exists():
            return UsageReport(by=by)
        return target.summarize(query, by=by)
    except LedgerError as exc:
        raise unreadable(exc) from exc
    finally:
        if own:
            target.close()


def read_records(query: UsageQuery) -> Iterator[LedgerRecord]:
    """The raw rows for ``usage --csv`` (none when nothing was recorded yet). Never writes."""
    with UsageLedger(read_only=True) as ledger:
        if not ledger.exists():
            return
        try:
            yield from ledger.records(query)
        except LedgerError as exc:
            raise unreadable(exc) from exc


def unreadable(exc: LedgerError) -> UsageError:
    """The one-line error for a ledger that cannot be read, with the fix for its cause."""
    return UsageError(f"Cannot read usage: {exc}.", hint=exc.hint)


def sorted_groups(report: UsageReport) -> list[tuple[str, Totals]]:
    """Days in order; anything else by cost, then calls, largest first."""
    items = list(report.groups.items())
    if report.by == "day":
        return sorted(items)
    return sorted(items, key=lambda kv: (-kv[1].cost_usd, -kv[1].calls, kv[0]))


def totals_json(totals: Totals) -> dict[str, Any]:
    """A figure no call knows is null; otherwise the sum of the calls that know it."""
    return {
        "calls": totals.calls,
        "input_tokens": totals.input_tokens if totals.input_calls or not totals.reached else None,
        "output_tokens": totals.output_tokens if totals.output_calls or not totals.reached else None,
        "total_tokens": totals.total_tokens if totals.total_calls or not totals.reached else None,
        "cached_input_tokens": totals.cached_input_tokens,
        "cost_usd": round(totals.cost_usd, 9) if totals.cost_calls else None,
        "unknown_input_calls": totals.unknown_input,
        "unknown_output_calls": totals.unknown_output,
        "unknown_tokens_calls": totals.unknown_tokens,
        "unknown_cost_calls": totals.unknown_cost,
        "errors": totals.errors,
        "interrupted": totals.interrupted,
        "not_reached_calls": totals.unreached,
    }


def report_json(report: UsageReport, query: UsageQuery) -> dict[str, Any]:
    return {
        "by": report.by,
        "since": _iso(query.since),
        "until": _iso(query.until),
        "filters": {"model": query.model, "provider": query.provider, "command": query.command},
        "totals": totals_json(report.totals),
        "groups": [{report.by: key, **totals_json(totals)} for key, totals in sorted_groups(report)],
    }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def format_cost(usd: float | None) -> str:
    """``$0.000123`` / ``$0.0123`` / ``$1.23``; ``—`` for unknown; enough digits for a cheap call to show."""
    if usd is None:
        return "—"
    if usd == 0:
        return "$0"
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    if abs(usd) >= 0.01:
        return f"${usd:.4f}"
    return f"${usd:.6f}"


CSV_HEADER: tuple[str, ...] = ("id", "time_utc", *COLUMNS)


def write_csv(records: Iterable[LedgerRecord], stream: TextIO) -> int:
    """The raw rows as CSV (time as ISO 8601 UTC, unknown as empty cells); returns the row count."""
    writer = csv.writer(stream)
    writer.writerow(CSV_HEADER)
    count = 0
    for r in records:
        time_utc = r.time_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        writer.writerow([r.id, time_utc, *("" if getattr(r, c) is None else getattr(r, c) for c in COLUMNS)])
        count += 1
    return count


def as_recorded(settings: Settings, name: str) -> str:
    """The ledger's name for the model the user named: an alias (or ``demo``) as PROVIDER/MODEL-ID it stands for."""
    from llmctl.config import DEMO_MODEL_ALIAS
    from llmctl.providers.registry import resolve

    if name != DEMO_MODEL_ALIAS and name not in settings.models:
        return name
    resolved = resolve(name, settings)
    return f"{resolved.provider_name}/{resolved.recorded_id}"
