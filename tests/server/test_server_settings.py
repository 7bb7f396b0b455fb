"""[server] in the config, the ledger's client column, and signals held on the main thread only."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from llmctl.config import parse_keep_alive, parse_settings
from llmctl.errors import ConfigError
from llmctl.services import interrupts
from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from llmctl.services.usage.schema import MIGRATIONS, statements


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300.0),
        ("30s", 30.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        (0, 0.0),
        ("0", 0.0),
        (90, 90.0),
        (-1, None),
        ("-5m", None),
        ("-1", None),
    ],
)
def test_keep_alive_is_read_as_ollama_writes_it(value: str | int, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize(
    ("toml", "line", "key", "phrase"),
    [
        ('keep_alive = "soon"', 2, "server.keep_alive", "duration"),
        ("keep_alive = true", 2, "server.keep_alive", "duration"),
        ('keep_alive = "1e999"', 2, "server.keep_alive", "finite"),
        ('keep_alive = "400d"', 2, "server.keep_alive", "duration"),
        ("port = 70000", 2, "server.port", "65535"),
        ('port = "8484"', 2, "server.port", "quoted"),
        ('url = "ftp://example.com"', 2, "server.url", "http"),
        ("bind = 1", 2, "server.bind", "unknown key"),
        ('api_keys = { laptop = "sk-proj-abcdefghijklmnopqrstuvwxyz012345" }', 2, "server.api_keys", "NAME"),
    ],
)
def test_bad_server_settings_name_file_line_and_key(
    tmp_path: Path, toml: str, line: int, key: str, phrase: str
) -> None:
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError) as refused:
        parse_settings(f"[server]\n{toml}\n", path)
    message = refused.value.message
    assert f"{path}:{line}: {key}" in message and phrase in message
    assert "abcdefghijklmnop" not in message  # a pasted key is never echoed


def test_the_example_config_documents_server(tmp_path: Path) -> None:
    from llmctl.paths import example_config_path

    settings = parse_settings(example_config_path().read_text(), example_config_path())
    assert settings.server.host == "127.0.0.1" and settings.server.port == 8484
    assert settings.server.keep_alive_s == 300.0


def _record(client: str | None, ts: float = 1_800_000_000.0) -> LedgerRecord:
    return LedgerRecord(
        ts=ts,
        command="serve",
        provider="hf",
        model="llmctl/demo",
        status="ok",
        token_source="exact",
        input_tokens=3,
        output_tokens=2,
        total_tokens=5,
        client=client,
    )


def test_usage_by_client_sums_each_client_and_calls_without_one(tmp_path: Path) -> None:
    with UsageLedger(tmp_path / "usage.sqlite3") as ledger:
        ledger.record_many([_record("alice"), _record("alice"), _record("bob"), _record(None)])
        groups = ledger.summarize(by="client").groups
    assert {name: totals.calls for name, totals in groups.items()} == {"alice": 2, "bob": 1, "-": 1}
    assert groups["alice"].total_tokens == 10


def test_a_ledger_from_before_clients_is_read_in_place(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with sqlite3.connect(path) as conn:  # a version-3 ledger, as the llmctl before serve wrote it
        for script in MIGRATIONS[:3]:
            for statement in statements(script):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.execute(
            "INSERT INTO calls (ts, command, provider, model, status, token_source) "
            "VALUES (1800000000, 'generate', 'hf', 'm', 'ok', 'exact')"
        )
    path.chmod(0o444)
    with UsageLedger(path, read_only=True) as ledger:
        assert [r.client for r in ledger.records()] == [None]
        assert ledger.summarize(by="client").groups["-"].calls == 1
    path.chmod(0o644)
    with UsageLedger(path) as ledger:  # written to: migrated, and the column is there
        ledger.record(_record("carol"))
        assert [r.client for r in ledger.records()] == [None, "carol"]


def test_a_worker_thread_holding_signals_leaves_the_main_threads_count_alone() -> None:
    seen: list[int] = []

    def work() -> None:
        with interrupts.held():
            seen.append(interrupts._Hold.depth)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [0] and interrupts._Hold.depth == 0
    with interrupts.held():
        assert interrupts._Hold.depth == 1
