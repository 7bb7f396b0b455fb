"""The ledger can be read when it cannot be written, names the real cause, and reports honestly.

Grouping by provider and model, calls that never reached a model, non-negative durations,
and text that SQLite would refuse (a non-UTF-8 argument arrives as lone surrogates).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmctl.config import ModelSettings, Settings
from llmctl.domain import Completion, CountSource, FinishReason, GenerationRequest, Message, Usage
from llmctl.errors import AuthenticationError, UsageError
from llmctl.provider_specs import OpenAIProviderSettings
from llmctl.providers.base import ResolvedModel
from llmctl.services.generation import GenerationResult, GenerationRun, RunStatus, Timing
from llmctl.services.usage import ledger as usage_ledger
from llmctl.services.usage import schema as usage_schema
from llmctl.services.usage.accounting import record_call
from llmctl.services.usage.ledger import LedgerError, LedgerRecord, UsageLedger, UsageQuery
from llmctl.services.usage.report import build_report, read_records
from tests.conftest import CliResult
from tests.fakes import FakeBackend

Run = Callable[..., CliResult]


def row(**overrides: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "ts": 1_700_000_000.0,
        "command": "generate",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "ok",
        "token_source": "provider",
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "cost_usd": 0.001,
    }
    values.update(overrides)
    return LedgerRecord(**values)


def result(resolved: ResolvedModel, **overrides: Any) -> GenerationResult:
    values: dict[str, Any] = {
        "completion": Completion("hi", FinishReason.STOP, Usage(10, 5, CountSource.PROVIDER)),
        "model": resolved.alias or resolved.model_id,
        "provider": resolved.provider_name,
        "timing": Timing(first_token_s=0.1, total_s=0.5),
        "status": RunStatus.OK,
    }
    values.update(overrides)
    return GenerationResult(**values)


# -- grouping ------------------------------------------------------------------------------------


def test_one_model_id_from_four_providers_is_four_rows_and_an_alias_is_its_target(isolated_home: Path) -> None:
    settings = Settings()
    for provider in ("openai", "azure", "openrouter", "my-gateway"):
        resolved = ResolvedModel(provider, "openai", "gpt-4o-mini", OpenAIProviderSettings())
        record_call(result(resolved), resolved, settings=settings, command="generate")
    aliased = ResolvedModel(
        "openai",
        "openai",
        "gpt-4o-mini",
        OpenAIProviderSettings(),
        alias="mini",
        model_settings=ModelSettings(provider="openai", id="gpt-4o-mini"),
    )
    record_call(result(aliased), aliased, settings=settings, command="generate")
    report = build_report(UsageQuery(), "model")
    assert {key: totals.calls for key, totals in report.groups.items()} == {
        "openai/gpt-4o-mini": 2,
        "azure/gpt-4o-mini": 1,
        "openrouter/gpt-4o-mini": 1,
        "my-gateway/gpt-4o-mini": 1,
    }
    assert build_report(UsageQuery(model="azure/gpt-4o-mini"), "model").totals.calls == 1
    assert build_report(UsageQuery(model="gpt-4o-mini"), "model").totals.calls == 5


# -- calls that never reached a model --------------------------------------------------------------


def test_a_run_that_never_reached_a_model_is_an_error_with_no_negative_duration() -> None:
    ticks = iter([10.0, 10.0, 9.0, 9.0, 9.0])  # a clock read out of order must not give -1 s
    no_key = FakeBackend(fail_prepare=AuthenticationError("No API key for provider 'openai'."))  # as a hosted one fails
    run = GenerationRun(no_key.open(), GenerationRequest((Message("user", "hi"),)), clock=lambda: next(ticks))
    with pytest.raises(AuthenticationError):
        list(run.deltas())
    outcome = run.result()
    assert outcome.status is RunStatus.ERROR and not outcome.reached_model
    assert outcome.timing.total_s >= 0


def test_unreached_calls_make_no_sum_a_lower_bound(isolated_home: Path) -> None:
    with UsageLedger() as ledger:
        ledger.record_many(
            [
                row(),
                row(
                    status="error",
                    token_source="not_applicable",
                    input_tokens=None,
                    output_tokens=None,
                    total_tokens=None,
                    cost_usd=None,
                ),
            ]
        )
    totals = build_report(UsageQuery(), "model").totals
    assert (totals.calls, totals.errors, totals.unreached) == (2, 1, 1)
    assert (totals.unknown_tokens, totals.unknown_input, totals.unknown_output, totals.unknown_cost) == (0, 0, 0, 0)


# -- reading a ledger that cannot be written ------------------------------------------------------


@pytest.fixture
def recorded(isolated_home: Path) -> Path:
    with UsageLedger() as ledger:
        ledger.record_many([row(), row(model="gpt-4o")])
    return isolated_home / "usage.sqlite3"


def _no_writable_connections(monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    """Any connection that could write fails as a full or read-only disk makes it fail."""
    real = sqlite3.connect

    def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if not (kwargs.get("uri") and "mode=ro" in str(database)):
            raise sqlite3.OperationalError(message)
        return real(database, *args, **kwargs)

    monkeypatch.setattr(usage_ledger.sqlite3, "connect", connect)


@pytest.mark.parametrize("message", ["database or disk is full", "attempt to write a readonly database"])
def test_usage_reads_a_ledger_that_cannot_be_written(
    run_llmctl: Run, recorded: Path, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    _no_writable_connections(monkeypatch, message)
    report = run_llmctl("usage", "--json")
    assert report.exit_code == 0, report.stderr
    assert json.loads(report.stdout)["totals"]["calls"] == 2
    csv = run_llmctl("usage", "--csv")
    assert csv.exit_code == 0 and len(csv.stdout.splitlines()) == 3


def test_usage_reads_a_ledger_in_a_folder_it_cannot_write() -> None:
    """For real: as a user who may read the ledger but not write it or its folder (root reads as nobody)."""
    import shutil
    import subprocess
    import sys
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="llmctl-read-only-"))
    try:
        with UsageLedger(folder / "usage.sqlite3") as ledger:
            ledger.record_many([row(), row(model="gpt-4o")])
        for path in folder.iterdir():
            path.chmod(0o444)
        folder.chmod(0o555)
        command = [sys.executable, "-m", "llmctl", "usage", "--json"]
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("root can write anywhere, and setpriv is not here to drop that")
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        env = {
            **os.environ,
            "LLMCTL_HOME": str(folder),
            "LLMCTL_CONFIG": str(folder / "absent.toml"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["totals"]["calls"] == 2
        assert sorted(p.name for p in folder.iterdir()) == ["usage.sqlite3"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_reading_leaves_the_ledger_file_untouched(recorded: Path) -> None:
    before = recorded.read_bytes()
    with UsageLedger(read_only=True) as ledger:
        assert ledger.summarize().totals.calls == 2
    assert recorded.read_bytes() == before


def _corrupt(path: Path) -> None:
    path.write_bytes(b"this is not sqlite" * 100)


def _too_new(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {usage_schema.SCHEMA_VERSION + 3}")
    conn.close()


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\0" * (len(data) - 100))


CAUSES = [
    pytest.param(_corrupt, "corrupt", "damaged", id="not-a-database"),
    pytest.param(_truncated, "corrupt", "damaged", id="truncated"),
    pytest.param(_too_new, "too_new", "upgrade llmctl", id="schema-too-new"),
]


@pytest.mark.parametrize(("damage", "cause", "hint"), CAUSES)
def test_the_hint_names_the_real_cause(
    run_llmctl: Run, isolated_home: Path, damage: Callable[[Path], None], cause: str, hint: str
) -> None:
    path = isolated_home / "usage.sqlite3"
    with UsageLedger() as ledger:
        ledger.record(row())
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    damage(path)
    with pytest.raises(LedgerError) as caught, UsageLedger(read_only=True) as ledger:
        ledger.summarize()
    assert caught.value.cause == cause
    with pytest.raises(UsageError) as error:
        build_report(UsageQuery(), "model")
    assert hint in (error.value.hint or "") and "permissions" not in (error.value.hint or "")
    with pytest.raises(UsageError):
        list(read_records(UsageQuery()))
    result = run_llmctl("usage")
    assert result.exit_code == 2 and hint in result.stderr and "Traceback" not in result.stderr


def test_a_locked_or_unwritable_ledger_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(LedgerError) as caught, UsageLedger(blocker / "usage.sqlite3") as ledger:
        ledger.record(row())
    assert caught.value.cause in ("permissions", "unknown")
    assert "permissions" in caught.value.hint or "LLMCTL_DEBUG" in caught.value.hint


# -- text SQLite would refuse -----------------------------------------------------------------------


def test_a_non_utf8_prompt_is_recorded_not_lost(isolated_home: Path) -> None:
    settings = Settings.model_validate({"usage": {"store_text": True}})
    resolved = ResolvedModel("openai", "openai", "gpt-4o-mini", OpenAIProviderSettings())
    accounting = record_call(result(resolved), resolved, settings=settings, command="generate", prompt_text="caf\udce9")
    assert accounting.saved and accounting.warning is None
    with UsageLedger() as ledger:
        (saved,) = ledger.records()
    assert saved.prompt_text == "caf\ufffd"


def test_a_ledger_from_before_the_unreached_measure_is_read_in_place_then_upgraded(isolated_home: Path) -> None:
    with UsageLedger() as ledger:
        ledger.record(row())
    conn = sqlite3.connect(isolated_home / "usage.sqlite3")  # back to schema 1, as an older llmctl left it
    conn.executescript("DROP TRIGGER calls_text_insert; DROP TRIGGER calls_text_delete; DROP TABLE calls_text;")
    conn.execute("ALTER TABLE usage_rollup DROP COLUMN unreached")
    conn.execute("ALTER TABLE calls DROP COLUMN client")  # added in schema 4
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    before = (isolated_home / "usage.sqlite3").read_bytes()
    with UsageLedger(read_only=True) as ledger:  # read as it is: nothing written
        totals = ledger.summarize().totals
    assert (totals.calls, totals.unreached, totals.unknown_tokens) == (1, 0, 0)
    assert (isolated_home / "usage.sqlite3").read_bytes() == before
    with UsageLedger() as ledger:  # a writer upgrades it and keeps the row
        assert ledger.schema_version() == usage_schema.SCHEMA_VERSION
        ledger.record(row(token_source="not_applicable", status="error", input_tokens=None, total_tokens=None))
        assert ledger.summarize().totals.unreached == 1 and ledger.count() == 2


def test_a_write_that_fails_warns_with_the_fix_for_its_cause(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _corrupt(path)
    resolved = ResolvedModel("openai", "openai", "gpt-4o-mini", OpenAIProviderSettings())
    accounting = record_call(
        result(resolved), resolved, settings=Settings(), command="generate", ledger=UsageLedger(path)
    )
    assert not accounting.saved and accounting.warning is not None
    assert "Usage not recorded" in accounting.warning and "damaged" in accounting.warning
