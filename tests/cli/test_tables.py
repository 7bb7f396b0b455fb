"""Every table command: a rich table on a terminal, whole tab-separated lines when piped.

A terminal is simulated with ``TTY_COMPATIBLE=1`` (rich's own switch, which users have too) at
``COLUMNS=80``; "piped" is what ``run_llmctl`` captures anyway. The lead's pty + pyte tests look
at a real screen; these look at the bytes each mode promises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmctl.cli import output
from llmctl.services.chat.conversation import Conversation, Turn
from llmctl.services.chat.store import ConversationStore
from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from tests.conftest import CliResult

Run = Callable[..., CliResult]

# Longer than any terminal line: piped, each must come out whole, on one line.
LONG_MODEL_ID = "organisation-with-a-long-name/" + "a-model-whose-identifier-goes-on-" * 4 + "and-ends-here"
LONG_ALIAS = "alias-" + "that-is-long-" * 8 + "end"
LONG_TITLE = "Tell me about " + "the history of tabular output in command line tools, " * 3 + "briefly"


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture
def piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "0")  # as if a user's environment forced nothing and stdout were a pipe


def tsv_blocks(stdout: str) -> list[list[list[str]]]:
    """Piped output as blocks (separated by blank lines) of rows of fields; checks each block is rectangular."""
    assert "\x1b" not in stdout, "ANSI escapes in piped output"
    assert stdout.endswith("\n")
    blocks = [[line.split("\t") for line in chunk.splitlines()] for chunk in stdout.strip("\n").split("\n\n")]
    for block in blocks:
        widths = {len(row) for row in block}
        assert len(widths) == 1 and widths != {1}, f"ragged or untabbed block: {block}"
    return blocks


def assert_terminal_table(stdout: str, *, ruled: bool = True) -> str:
    """Laid out for an 80-column terminal: no tabs, nothing wider, a rule under each table's header.

    Returns the text without its styles (what the screen shows).
    """
    shown = re.sub(r"\x1b\[[0-9;]*m", "", stdout)
    assert "\t" not in shown and "\x1b" not in shown
    assert all(len(line) <= 80 for line in shown.splitlines()), "wider than the terminal"
    assert ("─" in shown) is ruled
    return shown


# -- the helper itself -------------------------------------------------------------------------------------------

COLUMNS = (output.Column("name"), output.Column("count", justify="right"), output.Column("note"))
HOSTILE_ROWS = [
    ("tab\there", 1, "new\nline"),
    ("[bold]markup[/bold]", 1234567, None),
    ("escape\x1b[31mred", 0, "carriage\rreturn\u2028and\x85more"),
    (LONG_MODEL_ID, None, ""),
]


def test_piped_table_is_a_header_then_whole_rows(capsys: pytest.CaptureFixture[str], piped: None) -> None:
    output.table(COLUMNS, HOSTILE_ROWS, title="Not shown when piped", footer=("total", 1234567, None))
    [block] = tsv_blocks(capsys.readouterr().out)
    assert block == [
        ["name", "count", "note"],
        ["tab here", "1", "new line"],
        ["[bold]markup[/bold]", "1234567", "unknown"],  # ints plain, unknown spelled out, never 0
        ["escape [31mred", "0", "carriage return and more"],
        [LONG_MODEL_ID, "unknown", ""],
        ["total", "1234567", "unknown"],
    ]


def test_terminal_table_shows_every_value_without_markup_or_tabs(
    capsys: pytest.CaptureFixture[str], terminal: None
) -> None:
    output.table(COLUMNS, HOSTILE_ROWS, title="Things", footer=("total", 1234567, None))
    shown = assert_terminal_table(capsys.readouterr().out)
    assert "Things" in shown and "[bold]markup[/bold]" in shown and "1,234,567" in shown and "—" in shown
    assert "\x1b[31m" not in shown  # a control character in a value is not passed to the terminal


def test_a_value_wider_than_the_terminal_folds_but_is_never_cut(
    capsys: pytest.CaptureFixture[str], terminal: None
) -> None:
    output.table((output.Column("model"), output.Column("n", no_wrap=True)), [(LONG_MODEL_ID, 1)])
    _, _, *lines = assert_terminal_table(capsys.readouterr().out).splitlines()  # heading, rule, then the row
    assert len(lines) > 1
    assert "".join(line.replace(" 1", "").strip() for line in lines) == LONG_MODEL_ID  # the id has no digits


def test_a_clipped_column_keeps_its_rows_on_one_line(capsys: pytest.CaptureFixture[str], terminal: None) -> None:
    output.table((output.Column("id", no_wrap=True), output.Column("first line", clip=True)), [("abc", LONG_TITLE)])
    [row] = [line for line in assert_terminal_table(capsys.readouterr().out).splitlines() if "abc" in line]
    assert row.rstrip().endswith("…") and LONG_TITLE[:20] in row


def test_piped_facts_are_label_tab_value_lines(capsys: pytest.CaptureFixture[str], piped: None) -> None:
    output.facts([("tokens", 12345), ("left", None), ("model", LONG_MODEL_ID)], title="Not shown")
    assert capsys.readouterr().out == f"tokens\t12345\nleft\tunknown\nmodel\t{LONG_MODEL_ID}\n"


def test_a_row_of_the_wrong_width_is_a_bug_not_output(capsys: pytest.CaptureFixture[str], piped: None) -> None:
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        output.table(COLUMNS, [("a", 1)])
    assert capsys.readouterr().out == ""


# -- each command, piped and on a terminal ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    piped: tuple[str, ...]  # each the whole of one piped line, or its first fields (then a tab follows)
    fragments: tuple[str, ...] = ()  # each inside one piped line: a long value, never folded
    terminal: tuple[str, ...] = ()  # what a person sees on the terminal
    ruled: bool = True  # a table with a header (not only label/value records)


@pytest.fixture
def state(config_file: Path, isolated_home: Path) -> Iterator[None]:
    """A config with a long alias and id, a ledger with an unknown cost, and a conversation with a long title."""
    config_file.write_text(
        '[providers.my-vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        f'[models.{LONG_ALIAS}]\nprovider = "my-vllm"\nid = "{LONG_MODEL_ID}"\n'
        '[models.fast]\nprovider = "openai"\nid = "gpt-4o-mini"\n',
        encoding="utf-8",
    )
    now = 1_790_000_000.0
    with UsageLedger() as ledger:
        ledger.record_many(
            [
                LedgerRecord(ts=now, command="generate", provider="openai", model="gpt-4o-mini", status="ok",
                             token_source="provider", input_tokens=1200, output_tokens=30, total_tokens=1230,
                             cost_usd=0.0002),
                LedgerRecord(ts=now, command="generate", provider="my-vllm", model=LONG_MODEL_ID, status="ok",
                             token_source="provider", input_tokens=10, output_tokens=None, total_tokens=None,
                             cost_usd=None),
            ]
        )  # fmt: skip
    ConversationStore().save(
        Conversation(id="20261201-table-test", model=LONG_MODEL_ID, turns=[Turn(LONG_TITLE, "ok", LONG_MODEL_ID)])
    )
    yield


CASES = {
    "models list": Case(
        ("models", "list"),
        piped=(
            "name\tprovider\tmodel\tparams\tcontext\tsize\tnotes",
            f"{LONG_ALIAS}\tmy-vllm\t{LONG_MODEL_ID}\tunknown\tunknown\t\t",
            "fast\topenai\tgpt-4o-mini\tunknown",
        ),
        terminal=("Models", "gpt-4o-mini", "—"),
    ),
    "models info demo": Case(
        ("models", "info", "demo"),
        piped=("name\tdemo", "source\tbuilt-in", "file\tsize", "precision\tweights", "GPUs"),
        terminal=("Files", "Memory needed", "config.json", "fp32"),
    ),
    "models info hosted": Case(
        ("models", "info", "openai/gpt-4o-mini"),
        piped=("name\topenai/gpt-4o-mini", "provider\topenai (openai)", "context", "price"),
        terminal=("context", " tokens"),
        ruled=False,
    ),
    "usage": Case(
        ("usage",),
        piped=(),
        fragments=(
            "\tcalls\tinput\toutput\ttotal tokens\tcost\tfailed",
            LONG_MODEL_ID,
            "\tunknown\tunknown\tunknown\t",
            "total\t2\t1210\t≥30\t≥1,230\t≥$",
        ),
        terminal=("gpt-4o-mini", "1,200", "—", "total", "≥1,230"),
    ),
    "tokens count": Case(
        ("tokens", "count", "-m", "openai/gpt-4o-mini", "Hello there"),
        piped=("tokens", "source\texact", "model\topenai/gpt-4o-mini (openai)", "context window", "left"),
        terminal=("tokens", "exact", "% used"),
        ruled=False,
    ),
    "chat --list": Case(
        ("chat", "--list"),
        piped=("ID\tMODEL\tTURNS\tFIRST LINE\tUPDATED", f"20261201-table-test\t{LONG_MODEL_ID}\t1\t{LONG_TITLE}"),
        terminal=("20261201-table-test", "…"),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_piped_tables_are_whole_tab_separated_lines(run_llmctl: Run, state: None, piped: None, name: str) -> None:
    case = CASES[name]
    result = run_llmctl(*case.args)
    assert result.exit_code == 0, result.stderr
    tsv_blocks(result.stdout)
    lines = result.stdout.splitlines()
    for expected in case.piped:
        assert any(line == expected or line.startswith(expected + "\t") for line in lines), (expected, lines)
    for fragment in case.fragments:
        assert any(fragment in line for line in lines), (fragment, lines)


@pytest.mark.parametrize("name", CASES)
def test_terminal_tables_are_rich_tables_that_fit(run_llmctl: Run, state: None, terminal: None, name: str) -> None:
    case = CASES[name]
    result = run_llmctl(*case.args)
    assert result.exit_code == 0, result.stderr
    shown = assert_terminal_table(result.stdout, ruled=case.ruled)
    for text in case.terminal:
        assert text in shown, (text, shown)


def test_piped_models_list_names_cut_straight_into_models_info(run_llmctl: Run, state: None, piped: None) -> None:
    """`llmctl models list | cut -f1` gives names -m takes: no "(default)" decorations, no folding."""
    [block] = tsv_blocks(run_llmctl("models", "list").stdout)
    names = [row[0] for row in block[1:]]
    assert names[0] == "demo" and LONG_ALIAS in names
    assert next(row for row in block if row[0] == "demo")[-1].startswith("default; ")
    for name in ("demo", "fast"):
        assert run_llmctl("models", "info", name, "--json").exit_code == 0


@pytest.mark.parametrize("mode", ["piped", "terminal"])
def test_bench_table_in_both_modes(
    run_llmctl: Run, config_file: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    from tests.wire.openai_server import OpenAIServer, Reply

    monkeypatch.setenv("TTY_COMPATIBLE", "1" if mode == "terminal" else "0")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-tables")
    with OpenAIServer(api_key="sk-test-tables", default=Reply(chunks=["One"], usage=(64, 1))) as server:
        config_file.write_text(f'[providers.openai]\nbase_url = "{server.base_url}"\nmax_retries = 0\n')
        result = run_llmctl("bench", "openai/gpt-4o-mini", "--runs", "1", "--warmup", "1", "--max-tokens", "1")
    assert result.exit_code == 0, result.stderr
    if mode == "terminal":
        shown = assert_terminal_table(result.stdout)
        assert "Benchmark of openai/gpt-4o-mini" in shown and "1 run after 1 warm-up" in shown
        return
    stats, details = tsv_blocks(result.stdout)
    assert stats[0] == ["metric", "median", "min", "max", "unit"]
    assert [row[0] for row in stats[1:]] == ["Time to first token", "Prefill", "Decode", "Whole call"]
    assert ["Runs", "1 run after 1 warm-up"] in details  # the title's facts survive the pipe
    assert ["Tokens per run", "64 prompt → 1 new token"] in details


def test_hosted_models_show_the_context_window_tokens_count_knows(run_llmctl: Run, state: None) -> None:
    counted = json.loads(run_llmctl("tokens", "count", "-m", "openai/gpt-4o-mini", "--json", "hi").stdout)
    info = json.loads(run_llmctl("models", "info", "openai/gpt-4o-mini", "--json").stdout)
    listed = {e["name"]: e for e in json.loads(run_llmctl("models", "list", "--json").stdout)}
    text = run_llmctl("models", "info", "openai/gpt-4o-mini").stdout

    assert isinstance(counted["context_window"], int)
    assert info["context_window"] == listed["fast"]["context_window"] == counted["context_window"]
    assert f"context\t{counted['context_window']:,} tokens\n" in text
    assert listed[LONG_ALIAS]["context_window"] is None  # a model genai-prices does not know: unknown, not 0


def test_one_file_is_one_file(run_llmctl: Run, tmp_path: Path, piped: None) -> None:
    folder = tmp_path / "bare-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 1}')
    result = run_llmctl("models", "info", str(folder))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "context\t1 token" in lines and any(line.startswith("files\t1 file, ") for line in lines)
    assert "parameters\tunknown" in lines  # no safetensors: unknown, not 0
