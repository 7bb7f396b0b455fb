"""Time buckets of the ledger's rollup, and how a time range splits into them.

Every call is added to three rollup rows: its UTC hour, UTC day and UTC month (per command,
provider and model). A range ``[since, until)`` is covered by the whole months inside it,
then whole days and whole hours at its edges, then the raw calls of the partial hours
left over. A year's report reads about a dozen month rows per model instead of every call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Period = Literal["month", "day", "hour"]
PERIODS: tuple[Period, ...] = ("month", "day", "hour")
_FIXED_SECONDS = {"day": 86400, "hour": 3600}


def bucket_start(period: Period, ts: float) -> int:
    """Start (unix time) of the ``period`` bucket holding ``ts``."""
    if period == "month":
        moment = datetime.fromtimestamp(ts, tz=UTC)
        return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp())
    size = _FIXED_SECONDS[period]
    return math.floor(ts / size) * size


def next_bucket(period: Period, start: int) -> int:
    if period == "month":
        moment = datetime.fromtimestamp(start, tz=UTC)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp())
    return start + _FIXED_SECONDS[period]


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


@dataclass(frozen=True)
class BucketRange:
    """Rollup rows of ``period`` whose bucket start is in ``[low, high)``; ``None`` is unbounded."""

    period: Period
    low: int | None
    high: int | None


@dataclass(frozen=True)
class RawRange:
    """Calls with ``start <= ts < end``; ``None`` is unbounded."""

    start: float | None
    end: float | None


def cover(
    since: float | None, until: float | None, periods: Sequence[Period] = PERIODS
) -> tuple[list[BucketRange], list[RawRange]]:
    """Split ``[since, until)`` into whole buckets, coarsest first, and raw leftovers."""
    if since is not None and until is not None and since >= until:
        return [], []
    if not periods:
        return [], [RawRange(since, until)]
    period, finer = periods[0], periods[1:]
    first = None
    if since is not None:
        first = bucket_start(period, since)
        if first < since:
            first = next_bucket(period, first)
    end = None if until is None else bucket_start(period, until)  # buckets before it end by `until`
    if first is not None and end is not None and first >= end:
        return cover(since, until, finer)
    buckets = [BucketRange(period, first, end)]
    raws: list[RawRange] = []
    for gap_start, gap_end in ((since, first), (end, until)):
        if gap_start is not None and gap_end is not None and gap_start < gap_end:
            more_buckets, more_raws = cover(gap_start, gap_end, finer)
            buckets += more_buckets
            raws += more_raws
    return buckets, raws
