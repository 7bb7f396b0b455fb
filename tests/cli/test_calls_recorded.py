"""A ledger row for every call that was made, whatever ends it (issue 11, "Every call recorded").

Hostile endings, table-driven: signals to a real process mid-stream, a reader that closes the
pipe, exceptions that are not LlmctlErrors from inside the stream, a standard output that
refuses the answer, and calls that never reached a model.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from llmctl.domain import TextDelta
from llmctl.services.usage.ledger import LedgerRecord, UsageLedger
from tests.cli.test_generate_ledger import HELLO_THERE, scripted
from tests.conftest import CliResult
from tests.fakes import FakeBackend
from tests.tiny_models import build_tiny_model

__all__ = ["scripted"]  # the fixture, imported for the tests below

Run = Callable[..., CliResult]
ROOT = Path(__file__).resolve().parents[2]


def rows(home: Path | None = None) -> list[LedgerRecord]:
    with UsageLedger(None if home is None else home / "usage.sqlite3") as ledger:
        return list(ledger.records()) if ledger.exists() else []


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def endless_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that cannot sample end-of-sequence: its reply runs until it is stopped."""
    return build_tiny_model("llama", tmp_path_factory.mktemp("endless") / "llama", context=8192, never_stops=True)


# -- signals mid-stream, in a real process -------------------------------------------------------

SIGNALS = [
    pytest.param(signal.SIGINT, 130, id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
    pytest.param(signal.SIGHUP, 129, id="SIGHUP"),
]


def start(args: list[str], *, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "llmctl", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
    )


@pytest.mark.slow  # a fresh interpreter that imports torch
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_a_signal_mid_stream_in_generate_records_an_interrupted_row(
    endless_model: Path, signum: int, code: int
) -> None:
    proc = start(["generate", "-m", str(endless_model), "Hi", "--max-tokens", "8000"])
    assert proc.stdout is not None
    proc.stdout.read(1)  # the answer is streaming
    time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err.decode()
    assert b"Traceback" not in err and b"Unexpected" not in err
    how = signal.Signals(signum).name if signum != signal.SIGINT else "Ctrl-C"
    assert f"Interrupted by {how} after ".encode() in err
    (row,) = rows()
    assert row.status == "interrupted" and row.command == "generate"
    assert row.output_tokens is not None and 0 < row.output_tokens < 8000


@pytest.mark.slow  # a fresh interpreter that imports torch
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_a_signal_mid_reply_in_a_piped_chat_records_the_turn_and_keeps_the_conversation(
    endless_model: Path, isolated_home: Path, signum: int, code: int
) -> None:
    proc = start(["chat", "-m", str(endless_model), "--max-tokens", "8000"], stdin=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"Hi\n")
    proc.stdin.flush()
    proc.stdout.read(1)
    time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err.decode()
    assert b"Traceback" not in err
    (row,) = rows()
    assert row.status == "interrupted" and row.command == "chat"
    (saved,) = (isolated_home / "conversations").glob("*.json")
    (turn,) = json.loads(saved.read_text())["turns"]
    assert turn["status"] == "interrupted" and turn["reply"]
    assert row.conversation_id == saved.stem


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_a_chat_whose_reader_closes_the_pipe_records_the_turn_and_saves_it(
    endless_model: Path, isolated_home: Path
) -> None:
    # `llmctl chat ... | head -c 5`
    proc = start(["chat", "-m", str(endless_model), "--max-tokens", "8000"], stdin=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(b"Hi\nAnd again\n")
    proc.stdin.close()
    proc.stdout.read(5)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert b"Error" not in err and b"Traceback" not in err
    (row,) = rows()
    assert row.status == "interrupted" and row.command == "chat"
    (saved,) = (isolated_home / "conversations").glob("*.json")
    assert json.loads(saved.read_text())["turns"][0]["status"] == "interrupted"


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_generate_to_a_full_disk_says_so_in_one_line_and_records_the_call(tiny_models: dict[str, Path]) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "llmctl", "generate", "-m", str(tiny_models["llama"]), "Hi", "--max-tokens", "3"],
            stdout=full,
            stderr=subprocess.PIPE,
            env=env(),
            timeout=300,
        )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "Cannot write to standard output" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("Error")]) == 1
    (row,) = rows()
    assert row.status == "error" and "No space left on device" in (row.error or "")


# -- exceptions from inside the stream, in-process -----------------------------------------------

NOT_OUR_ERRORS = [
    pytest.param(json.JSONDecodeError("Expecting value", "data: {oops", 6), "JSONDecodeError", id="malformed-sse"),
    pytest.param(ValueError("Error while deserializing header: HeaderTooLarge"), "ValueError", id="broken-safetensors"),
    pytest.param(RuntimeError("TemplateError: raise_exception('roles must alternate')"), "RuntimeError", id="template"),
    pytest.param(
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "UnicodeDecodeError", id="bad-bytes"
    ),
    pytest.param(KeyError("choices"), "KeyError", id="missing-field"),
    pytest.param(TypeError("'NoneType' object is not subscriptable"), "TypeError", id="wrong-type"),
    pytest.param(OSError(errno.EIO, "Input/output error"), "OSError", id="io-error"),
]


@pytest.mark.parametrize(("exception", "name"), NOT_OUR_ERRORS)
def test_generate_records_a_call_ended_by_any_exception(
    run_llmctl: Run, scripted: FakeBackend, exception: BaseException, name: str
) -> None:
    scripted.enqueue(*HELLO_THERE[:2], exception)
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    (row,) = rows()
    assert row.status == "error" and row.error is not None and row.error.startswith(name)
    assert (row.input_tokens, row.output_tokens) == (1000, 1)  # what was used before it broke


@pytest.mark.parametrize(("exception", "name"), NOT_OUR_ERRORS)
def test_chat_records_and_saves_a_turn_ended_by_any_exception(
    run_llmctl: Run, scripted: FakeBackend, isolated_home: Path, exception: BaseException, name: str
) -> None:
    scripted.enqueue(*HELLO_THERE[:2], exception)
    result = run_llmctl("chat", "-m", "openai/gpt-4o-mini", stdin=b"Hi\n")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    (row,) = rows()
    assert row.status == "error" and (row.error or "").startswith(name) and row.command == "chat"
    (saved,) = (isolated_home / "conversations").glob("*.json")
    (turn,) = json.loads(saved.read_text())["turns"]
    assert (turn["status"], turn["reply"]) == ("error", "Hello")


class RefusingStdout(io.TextIOBase):
    """A standard output whose every write fails with ``error`` (a full disk, a closed descriptor)."""

    def __init__(self, error: int) -> None:
        self._error = error

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        raise OSError(self._error, os.strerror(self._error))


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EBADF, errno.EIO], ids=["full", "closed", "io"])
@pytest.mark.parametrize("flags", [(), ("--no-stream",), ("--json",)], ids=["stream", "no-stream", "json"])
def test_a_standard_output_that_refuses_the_answer_is_one_error_line_and_a_row(
    run_llmctl: Run,
    scripted: FakeBackend,
    monkeypatch: pytest.MonkeyPatch,
    error: int,
    flags: tuple[str, ...],
) -> None:
    from llmctl.cli import generate

    monkeypatch.setattr(sys, "stdout", RefusingStdout(error))
    monkeypatch.setattr(generate, "_silence_stdout", lambda: None)  # the fake has no descriptor to replace
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi", *flags)
    assert result.exit_code == 1, result.stderr
    assert "Cannot write to standard output" in result.stderr and "Unexpected" not in result.stderr
    (row,) = rows()
    if "--json" in flags:  # the answer was complete before the JSON could not be written
        assert row.status == "ok"
    else:
        assert row.status == "error"


def test_a_reply_interrupted_after_its_text_keeps_its_text_when_a_second_signal_comes(
    run_llmctl: Run, scripted: FakeBackend
) -> None:
    from llmctl.services.interrupts import Terminated

    scripted.enqueue(TextDelta("partial", tokens=1), Terminated(signal.SIGTERM))
    result = run_llmctl("generate", "-m", "openai/gpt-4o-mini", "Hi")
    assert result.exit_code == 143
    assert "partial" in result.stdout and "Interrupted by SIGTERM" in result.stderr
    (row,) = rows()
    assert row.status == "interrupted" and row.output_tokens == 1


# -- calls that never reached a model ------------------------------------------------------------

NEVER_REACHED = [
    pytest.param(("-m", "openai/gpt-4o-mini"), "No API key", id="missing-key"),
    pytest.param(("-m", "anthropic/claude-3-5-haiku-latest"), "No API key", id="missing-anthropic-key"),
    pytest.param(("-m", "hf/nobody/not-in-the-cache"), "", id="not-in-cache"),
]


@pytest.mark.parametrize(("model", "message"), NEVER_REACHED)
def test_a_call_that_never_reached_a_model_is_an_error_row_with_no_unknown_tokens(
    run_llmctl: Run, model: tuple[str, ...], message: str
) -> None:
    result = run_llmctl("generate", *model, "Hi")
    assert result.exit_code != 0 and message in result.stderr
    (row,) = rows()
    assert (row.status, row.token_source) == ("error", "not_applicable")
    assert row.total_s is not None and row.total_s >= 0
    report = json.loads(run_llmctl("usage", "--json").stdout)["totals"]
    assert (report["calls"], report["errors"], report["not_reached_calls"]) == (1, 1, 1)
    assert (report["unknown_tokens_calls"], report["unknown_cost_calls"]) == (0, 0)
    table = run_llmctl("usage")
    assert "≥" not in table.stdout and "unknown token counts" not in table.stderr


# -- damaged model folders, for real ---------------------------------------------------------------


def _garbage_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)


def _truncated_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])


def _raising_template(folder: Path) -> None:
    (folder / "chat_template.jinja").write_text("{{ raise_exception('roles must alternate') }}")


def _broken_template(folder: Path) -> None:
    (folder / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content ")


DAMAGED_MODELS = [
    pytest.param(_garbage_weights, id="garbage-safetensors"),
    pytest.param(_truncated_weights, id="truncated-safetensors"),
    pytest.param(_raising_template, id="template-raises"),
    pytest.param(_broken_template, id="template-syntax"),
]


@pytest.mark.parametrize("damage", DAMAGED_MODELS)
def test_a_damaged_model_folder_is_one_error_line_and_an_error_row(
    run_llmctl: Run, tiny_models: dict[str, Path], tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(tiny_models["llama"], folder)
    damage(folder)
    result = run_llmctl("generate", "-m", str(folder), "Hi", "--max-tokens", "3")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1
    (row,) = rows()
    assert row.status == "error" and row.error
    assert row.total_s is not None and row.total_s >= 0


@pytest.mark.slow  # a fresh interpreter that imports torch
@pytest.mark.parametrize("command", ["generate Hi", "chat"])
def test_stdout_closed_is_one_line_exit_1_and_the_call_recorded(tiny_models: dict[str, Path], command: str) -> None:
    script = f'echo Hi | "{sys.executable}" -m llmctl {command} -m "{tiny_models["llama"]}" --max-tokens 3 >&-'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env(), timeout=120)
    assert done.returncode == 1
    assert done.stderr == "Error: Cannot write to standard output: standard output is closed.\n"
    (row,) = rows()  # the answer had nowhere to go, but the call was made: it is on record
    assert row.status == "error" and row.error is not None and "closed" in row.error
