"""The usage ledger: one SQLite row per model call, and fast summaries over them.

Safe for many processes at once: WAL journal, a busy timeout, and every write in one
``BEGIN IMMEDIATE`` transaction. The schema is versioned with ``PRAGMA user_version``;
``MIGRATIONS[n]`` takes a ledger from version ``n`` to ``n + 1`` inside the same
transaction, so an old ledger is upgraded in place and keeps its history.

Besides the raw ``calls`` table, each write adds its call to ``usage_rollup``: one row per
UTC hour, day and month, and per command, provider and model (see ``usage_rollup``). A
report reads whole months, days and hours from there and only the partial hours at the
edges of ``--since``/``--until`` from ``calls`` (through the index on ``ts``), so its cost
grows with the number of months and models, not with the number of calls.

Unknown counts stay unknown: next to each sum the rollup keeps how many calls it covers,
so a report can say "at least" instead of treating a missing count as 0. A call that never
reached a model (token source ``not_applicable``) is counted apart: it used no tokens, so it
makes no sum a lower bound.

Reading never writes: ``UsageLedger(read_only=True)`` opens the file read-only (and, when
even that needs a write, such as WAL's shared-memory file in a read-only folder, as an
immutable file), so ``llmctl usage`` works on a full or read-only disk. Every
:class:`LedgerError` names its cause (``LedgerError.cause``) and the fix for it.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from llmctl.paths import data_home
from llmctl.services.usage.rollup import PERIODS, Period, RawRange, bucket_start, cover, utc_day
from llmctl.services.usage.schema import ADDED_IN, MIGRATIONS, SCHEMA_VERSION, cause_of, statements
from llmctl.services.usage.schema import COLUMNS as COLUMNS  # re-exported: callers know them from here
from llmctl.services.usage.schema import NOT_APPLICABLE as NOT_APPLICABLE
from llmctl.services.usage.schema import LedgerError as LedgerError
from llmctl.services.usage.schema import LedgerRecord as LedgerRecord
from llmctl.services.usage.schema import Totals as Totals

LEDGER_FILE = "usage.sqlite3"
BUSY_TIMEOUT_S = 30.0

GroupBy = Literal["model", "provider", "day", "command", "client"]
NO_CLIENT = "-"  # the client of a call not made through `llmctl serve`
# `--by model` groups on provider and model together: one model id served by two providers is two rows.
_MODEL_KEY = "provider || '/' || model"
_CLIENT_KEY = f"COALESCE(client, '{NO_CLIENT}')"


def ledger_path() -> Path:
    """Where the ledger lives: ``usage.sqlite3`` under ``$LLMCTL_HOME``."""
    return data_home() / LEDGER_FILE


# The rollup's measures, in table order: one per field of Totals.
_MEASURE_FIELDS = fields(Totals)
_MEASURES: tuple[str, ...] = tuple(f.name for f in _MEASURE_FIELDS)
_RAW_MEASURES = ", ".join(f.metadata["sql"] for f in _MEASURE_FIELDS)  # the same sums over the calls table


def _contribution(r: LedgerRecord) -> tuple[float, ...]:
    return tuple(f.metadata["row"](r) for f in _MEASURE_FIELDS)


_ROLLUP_UPSERT = (
    f"INSERT INTO usage_rollup (period, bucket, command, provider, model, {', '.join(_MEASURES)}) "
    f"VALUES ({', '.join('?' * (5 + len(_MEASURES)))}) "
    "ON CONFLICT (period, bucket, command, provider, model) DO UPDATE SET "
    + ", ".join(f"{m} = {m} + excluded.{m}" for m in _MEASURES)
)
_INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


@dataclass(frozen=True)
class UsageQuery:
    """Which calls to sum: ``[since, until)`` in unix time, and exact-match filters."""

    since: float | None = None
    until: float | None = None
    model: str | None = None
    provider: str | None = None
    command: str | None = None


@dataclass
class UsageReport:
    by: GroupBy
    totals: Totals = field(default_factory=Totals)
    groups: dict[str, Totals] = field(default_factory=dict)


class UsageLedger:
    """The ledger file. Opened lazily; every method may raise LedgerError."""

    def __init__(self, path: Path | None = None, *, timeout: float | None = None, read_only: bool = False) -> None:
        self.path = path if path is not None else ledger_path()
        self._timeout = BUSY_TIMEOUT_S if timeout is None else timeout
        self._read_only = read_only
        self._conn: sqlite3.Connection | None = None
        self._version = SCHEMA_VERSION

    # -- connection and schema -------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self._read_only:
            self._conn = self._connect_read_only()
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the usage ledger {self.path}: {exc}", cause_of(exc)) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise LedgerError(f"cannot use the usage ledger {self.path}: {exc}", cause_of(exc)) from exc
        except LedgerError:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """Open without writing anything: read-only, else (WAL in a read-only folder) immutable."""
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        failure: sqlite3.Error | None = None
        for mode in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(uri + mode, uri=True, timeout=self._timeout, isolation_level=None)
            except sqlite3.Error as exc:
                failure = exc
                continue
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                self._check_version(version)
                conn.execute("SELECT 1 FROM calls LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                conn.close()
                failure = exc
                if cause_of(exc) in ("corrupt", "locked"):
                    break
                continue
            except LedgerError:
                conn.close()
                raise
            self._version = version
            return conn
        assert failure is not None
        raise LedgerError(f"cannot read the usage ledger {self.path}: {failure}", cause_of(failure)) from failure

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the usage ledger {self.path} has schema version {version}, newer than this llmctl "
                f"understands ({SCHEMA_VERSION}); upgrade llmctl",
                "too_new",
            )
        if version < 1:
            raise LedgerError(f"the usage ledger {self.path} has no llmctl schema", "corrupt")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            self._check_version(version)
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, SCHEMA_VERSION):
                for statement in statements(MIGRATIONS[number]):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        return int(self._connect().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> UsageLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------

    def record(self, record: LedgerRecord) -> LedgerRecord:
        """Append one call; returns it with its row id."""
        ids = self.record_many([record])
        return LedgerRecord(**{**{f.name: getattr(record, f.name) for f in fields(record)}, "id": ids[0]})

    def record_many(self, records: Iterable[LedgerRecord]) -> list[int]:
        """Append calls in one transaction (the rollup updated in the same one)."""
        conn = self._connect()
        ids: list[int] = []
        rollup: dict[tuple[str, int, str, str, str], list[float]] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for r in records:
                    cursor = conn.execute(_INSERT, tuple(getattr(r, c) for c in COLUMNS))
                    ids.append(int(cursor.lastrowid or 0))
                    contribution = _contribution(r)
                    for period in PERIODS:
                        key = (period, bucket_start(period, r.ts), r.command, r.provider, r.model)
                        sums = rollup.setdefault(key, [0] * len(_MEASURES))
                        for i, value in enumerate(contribution):
                            sums[i] += value
                conn.executemany(_ROLLUP_UPSERT, [(*key, *sums) for key, sums in rollup.items()])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write to the usage ledger {self.path}: {exc}", cause_of(exc)) from exc
        return ids

    # -- reading -----------------------------------------------------------------------

    def summarize(self, query: UsageQuery = UsageQuery(), by: GroupBy = "model") -> UsageReport:
        """Totals and per-group sums (``by`` day groups on the UTC date)."""
        report = UsageReport(by=by)
        for key, values in self._grouped(query, by):
            report.totals.add(values)
            report.groups.setdefault(key, Totals()).add(values)
        return report

    def _grouped(self, query: UsageQuery, by: GroupBy) -> Iterator[tuple[str, Sequence[Any]]]:
        conn = self._connect()
        if by == "client":  # the rollup does not keep clients: sum the raw rows (an index on ts bounds them)
            try:
                raw = RawRange(query.since, query.until)
                clients = self._version >= ADDED_IN["client"]  # an older ledger read in place has none
                yield from self._raw_groups(
                    conn, by, raw, *self._filters(query), client_key=None if clients else f"'{NO_CLIENT}'"
                )
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot read the usage ledger {self.path}: {exc}", cause_of(exc)) from exc
            return
        # A month bucket cannot be split into days, so a report by day starts at days.
        periods: tuple[Period, ...] = ("day", "hour") if by == "day" else PERIODS
        buckets, raws = cover(query.since, query.until, periods)
        filters, params = self._filters(query)
        # A ledger read in place at an older schema lacks the later measures: they are 0 there.
        sums = ", ".join(f"SUM({f.name})" if f.metadata["since"] <= self._version else "0" for f in _MEASURE_FIELDS)
        try:
            for bucket in buckets:
                bounds, bound_values = _within("bucket", bucket.low, bucket.high)
                where = ["period = ?", *filters, *bounds]
                values: list[Any] = [bucket.period, *params, *bound_values]
                key = "bucket" if by == "day" else _MODEL_KEY if by == "model" else by
                sql = f"SELECT {key}, {sums} FROM usage_rollup {_where(where)} GROUP BY {key}"
                for row in conn.execute(sql, values):
                    yield (utc_day(row[0]) if by == "day" else row[0]), row[1:]
            for raw in raws:
                yield from self._raw_groups(conn, by, raw, filters, params)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the usage ledger {self.path}: {exc}", cause_of(exc)) from exc

    @staticmethod
    def _filters(query: UsageQuery) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if query.model is not None:  # as recorded, or as `usage --by model` lists it (PROVIDER/MODEL)
            where.append(f"(model = ? OR {_MODEL_KEY} = ?)")
            params += [query.model, query.model]
        for column in ("provider", "command"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        return where, params

    @staticmethod
    def _raw_groups(
        conn: sqlite3.Connection,
        by: GroupBy,
        raw: RawRange,
        filters: list[str],
        params: list[Any],
        *,
        client_key: str | None = None,
    ) -> Iterator[tuple[str, Sequence[Any]]]:
        bounds, bound_values = _within("ts", raw.start, raw.end)
        where = [*filters, *bounds]
        values = [*params, *bound_values]
        keys = {"day": "CAST(ts / 86400 AS INTEGER)", "model": _MODEL_KEY, "client": client_key or _CLIENT_KEY}
        key = keys.get(by, by)
        sql = f"SELECT {key}, {_RAW_MEASURES} FROM calls {_where(where)} GROUP BY {key}"
        for row in conn.execute(sql, values):
            yield (utc_day(row[0] * 86400) if by == "day" else row[0]), row[1:]

    def records(self, query: UsageQuery = UsageQuery()) -> Iterator[LedgerRecord]:
        """The raw rows, oldest first."""
        conn = self._connect()
        where, params = self._filters(query)
        if query.since is not None:
            where.append("ts >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("ts < ?")
            params.append(query.until)
        sql = f"SELECT id, {self.selected_columns()} FROM calls {_where(where)} ORDER BY ts, id"
        try:
            for row in conn.execute(sql, params):
                yield LedgerRecord(id=row[0], **dict(zip(COLUMNS, row[1:], strict=True)))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the usage ledger {self.path}: {exc}", cause_of(exc)) from exc

    def selected_columns(self) -> str:
        """``COLUMNS`` for a SELECT: NULL for those a ledger read in place at an older version lacks."""
        self._connect()
        return ", ".join(c if ADDED_IN.get(c, 0) <= self._version else f"NULL AS {c}" for c in COLUMNS)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only ``sql`` (for readers such as ``llmctl logs``); failures are LedgerError."""
        try:
            return list(self._connect().execute(sql, params))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the usage ledger {self.path}: {exc}", cause_of(exc)) from exc

    def count(self) -> int:
        try:
            return int(self._connect().execute("SELECT COUNT(*) FROM calls").fetchone()[0])
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the usage ledger {self.path}: {exc}", cause_of(exc)) from exc


def _within(column: str, low: float | None, high: float | None) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their values) for ``low <= column < high``; an open end adds none."""
    bounds = [(f"{column} >= ?", low), (f"{column} < ?", high)]
    return [sql for sql, value in bounds if value is not None], [value for _, value in bounds if value is not None]


def _where(conditions: list[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""
