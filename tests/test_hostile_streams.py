"""Hostile standard streams, through the real entry point in a subprocess: stdout closed (``>&-``),
full (``>/dev/full``) or a reader that goes away (``| head -1``), and stdin far larger than any
context window. Each row: a command, what stdout is, and the exit code and one line expected.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmctl.domain import Message
from llmctl.errors import ContextLengthError, InputError
from llmctl.services.generation import MAX_CHARS_PER_TOKEN, check_input_size, read_stdin

REPO = Path(__file__).resolve().parent.parent
LLMCTL = [sys.executable, "-m", "llmctl"]

# Commands that write to stdout, fast ones and one that generates (the demo model, greedy: it imports torch).
FAST_WRITERS = [
    ("config", "path"),
    ("config", "show"),
    ("usage", "--csv"),
    ("usage", "--json"),
    ("models", "list"),
    ("--help",),
]
GENERATE = ("generate", "What is the capital of France?", "--temperature", "0", "--max-tokens", "8")
WRITERS = [
    *(pytest.param(command, id=" ".join(command)[:24]) for command in FAST_WRITERS),
    pytest.param(GENERATE, id=" ".join(GENERATE)[:24], marks=pytest.mark.slow),
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.pop("LLMCTL_DEBUG", None)
    return env


def _shell(command: tuple[str, ...], redirect: str) -> subprocess.CompletedProcess[str]:
    argv = " ".join(shlex.quote(a) for a in [*LLMCTL, *command])
    return subprocess.run(["bash", "-c", f"{argv} {redirect}"], capture_output=True, text=True, env=_env(), timeout=120)


def _assert_one_line(stderr: str, phrase: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and phrase in errors[0], stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize(
    ("redirect", "phrase"),
    [(">&-", "standard output is closed"), (">/dev/full", "No space left on device")],
    ids=["closed", "full"],
)
def test_stdout_closed_or_full_is_one_line_and_exit_1(command: tuple[str, ...], redirect: str, phrase: str) -> None:
    result = _shell(command, redirect)
    assert result.returncode == 1, result.stderr
    _assert_one_line(result.stderr, f"Cannot write to standard output: {phrase}")


def test_a_command_that_writes_nothing_to_stdout_works_with_it_closed(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    result = _shell(("--config", str(config), "config", "init"), ">&-")
    assert result.returncode == 0, result.stderr
    assert config.is_file()


def test_with_stderr_closed_errors_do_not_land_on_stdout() -> None:
    result = _shell(("--config", "/nonexistent/llmctl.toml", "config", "show"), "2>&-")
    assert result.returncode == 2
    assert result.stdout == ""


@pytest.mark.parametrize("command", WRITERS)
def test_every_command_ends_quietly_when_its_reader_goes_away(command: tuple[str, ...]) -> None:
    proc = subprocess.Popen(
        [*LLMCTL, *command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first byte: every write is a broken pipe
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, stderr
    assert "Error" not in stderr and "Traceback" not in stderr and "Exception ignored" not in stderr


def test_usage_csv_into_head_exits_0() -> None:
    argv = " ".join(LLMCTL)
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {argv} usage --csv | head -c 1 >/dev/null"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


# -- stdin far larger than the context window ---------------------------------------------------


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_fifty_megabytes_of_stdin_is_refused_fast_and_small(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        line = b"all work and no play makes jack a dull boy\n"
        handle.write(line * (50 * 2**20 // len(line)))
    # A fresh parent, so RUSAGE_CHILDREN's peak is this llmctl's alone.
    probe = (
        "import resource, subprocess, sys, time\n"
        f"start = time.monotonic()\n"
        f"with open({str(big)!r}, 'rb') as stdin:\n"
        f"    done = subprocess.run({[*LLMCTL, 'generate', 'summarize']!r}, stdin=stdin, capture_output=True)\n"
        "print(done.returncode, time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(done.stderr.decode())\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=_env(), timeout=300)
    code, _, peak_kib = result.stdout.split()
    assert int(code) == 2, result.stderr
    assert "context window of 1024 tokens" in result.stderr and "at least" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60  # tokenizing it took minutes
    assert int(peak_kib) < 1_500_000  # under 1.5 GB (tokenizing it took 8.8 GB); torch alone is ~0.5 GB


def test_stdin_beyond_the_read_limit_is_refused_without_reading_it_all() -> None:
    stream = io.BytesIO(b"x" * 101)
    with pytest.raises(InputError, match="larger than"):
        read_stdin(stream, limit=100)
    assert stream.tell() == 101  # read limit + 1 bytes, not the rest of a possibly endless pipe
    assert read_stdin(io.BytesIO(b"x" * 100), limit=100) == "x" * 100


@pytest.mark.parametrize(
    ("chars", "window", "refused"),
    [
        (10 * MAX_CHARS_PER_TOKEN, 10, False),  # could still be exactly 10 tokens: count it
        (10 * MAX_CHARS_PER_TOKEN + 1, 10, True),  # at least 11 tokens whatever the tokenizer
        (50 * 2**20, 1024, True),
        (50 * 2**20, None, False),  # no window known: the provider decides
        (0, 1, False),
    ],
)
def test_the_length_bound_never_refuses_what_could_fit(chars: int, window: int | None, refused: bool) -> None:
    messages = (Message("system", "s" * (chars // 2)), Message("user", "u" * (chars - chars // 2)))
    if refused:
        with pytest.raises(ContextLengthError, match="at least"):
            check_input_size(messages, window, model="m")
    else:
        check_input_size(messages, window, model="m")
