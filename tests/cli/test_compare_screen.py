"""``llmctl compare`` on an emulated terminal: the layout a person sees, the cost question, Ctrl-C."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_compare import PRICED, ledger_rows, oai
from tests.hosted_servers import OPENAI_KEY
from tests.screen import Terminal
from tests.wire.openai_server import OpenAIServer, Reply, Slow

__all__ = ["oai"]  # the fixture, shared with test_compare.py

pytestmark = pytest.mark.slow


def _terminal(env_config: Path, home: Path, columns: int, *args: str) -> Terminal:
    env = {"LLMCTL_CONFIG": str(env_config), "LLMCTL_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env["OPENAI_API_KEY"] = OPENAI_KEY
    return Terminal([sys.executable, "-m", "llmctl", "compare", *args], columns=columns, rows=50, env=env)


@pytest.mark.parametrize("columns", [120, 60])
def test_answers_side_by_side_only_when_the_terminal_is_wide_enough(
    oai: OpenAIServer, config_file: Path, isolated_home: Path, columns: int
) -> None:
    config_file.write_text(config_file.read_text() + PRICED)
    oai.add(Reply(text="Alpha answer one."), Reply(text="Beta answer two."))
    term = _terminal(config_file, isolated_home, columns, "-m", "mini", "-m", "big", "Hi")
    assert term.finish() == 0, term.text()
    lines = term.lines()
    alpha = next(i for i, line in enumerate(lines) if "answer one" in line or "answer two" in line)
    both_on_one_line = "answer one" in lines[alpha] and "answer two" in lines[alpha]
    assert both_on_one_line == (columns == 120), term.text()
    assert "cheapest" in term.text() and "fastest" in term.text()
    assert "first token" in term.text() and "cost/call" in term.text()  # headings whole, never folded
    assert any(line.startswith("Whole call (median)") for line in lines)


EXPENSIVE = """
[models.pricey]
provider = "openai"
id = "gpt-4o"
input_price_per_mtok = 100000.0
output_price_per_mtok = 100000.0
"""


@pytest.mark.parametrize(("answer", "extra", "code", "requests"), [("n", (), 1, 0), (None, ("--yes",), 0, 1)])
def test_an_expensive_comparison_asks_first_on_a_terminal(
    oai: OpenAIServer,
    config_file: Path,
    isolated_home: Path,
    answer: str | None,
    extra: tuple[str, ...],
    code: int,
    requests: int,
) -> None:
    config_file.write_text(config_file.read_text() + EXPENSIVE)
    term = _terminal(config_file, isolated_home, 120, "-m", "pricey", "--max-tokens", "50", "Hello there", *extra)
    if answer is not None:
        term.wait_for("Run it? [y/N]")
        term.send(answer.encode() + b"\r")
    assert term.finish() == code, term.text()
    assert len(oai.requests_to("/v1/chat/completions")) == requests
    assert "Total: at most $" in term.text()
    assert ("Cancelled; nothing was run." in term.text()) is (code == 1)
    assert ("Run it?" in term.text()) is (answer is not None)


def test_ctrl_c_ends_every_call_records_it_and_exits_130(
    oai: OpenAIServer, config_file: Path, isolated_home: Path
) -> None:
    config_file.write_text(config_file.read_text() + PRICED)
    words = " ".join(f"word{i}" for i in range(200))
    oai.default = Reply(text=words, chunk_delay_s=0.05)  # 10 s each, unless interrupted
    term = _terminal(config_file, isolated_home, 120, "-m", "mini", "-m", "big", "Talk a lot")
    deadline = time.monotonic() + 20
    while len(oai.requests_to("/v1/chat/completions")) < 2 and time.monotonic() < deadline:
        term._pump(0.1)
    time.sleep(0.5)
    term.interrupt()
    assert term.finish(timeout_s=20) == 130, term.text()
    assert "Interrupted" in term.text()
    rows = ledger_rows()
    assert sorted((row.model, row.status) for row in rows) == [
        ("gpt-4o", "interrupted"),
        ("gpt-4o-mini", "interrupted"),
    ]
    assert all((row.total_s or 0) < 5 for row in rows)


def test_ctrl_c_does_not_wait_for_a_silent_server(oai: OpenAIServer, config_file: Path, isolated_home: Path) -> None:
    oai.default = Slow(math.inf)  # the server never answers; the client's timeout is 10 s
    term = _terminal(config_file, isolated_home, 120, "-m", "openai/gpt-4o-mini", "-m", "openai/gpt-4o", "Hi")
    deadline = time.monotonic() + 20
    while len(oai.requests_to("/v1/chat/completions")) < 2 and time.monotonic() < deadline:
        term._pump(0.1)
    interrupted = time.monotonic()
    term.interrupt()
    assert term.finish(timeout_s=20) == 130, term.text()
    assert time.monotonic() - interrupted < 5
    assert sorted(row.status for row in ledger_rows()) == ["interrupted", "interrupted"]
    assert "(interrupted)" in term.text()
