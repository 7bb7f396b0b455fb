"""--quantize and --dtype are one pair of options (cli/options.py) that every command taking them shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest

from llmctl import config
from llmctl.cli.options import DTypeChoice, Quantize
from tests.conftest import CliResult

Run = Callable[..., CliResult]
COMMANDS = [("bench",), ("models", "load")]


def test_the_choices_are_the_configs() -> None:
    assert tuple(Quantize) == get_args(config.Quantization)
    assert tuple(DTypeChoice) == get_args(config.DType)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("flag", "value"), [("--quantize", "3bit"), ("--dtype", "float8")])
def test_a_value_outside_the_choices_is_a_usage_error_before_anything_loads(
    run_llmctl: Run, tmp_path: Path, command: tuple[str, ...], flag: str, value: str
) -> None:
    folder = tmp_path / "not-a-model"  # nothing is read: the parser refuses first
    result = run_llmctl(*command, str(folder), flag, value)
    assert result.exit_code == 2, result.stderr
    assert value in result.stderr and flag in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_lists_the_choices(run_llmctl: Run, command: tuple[str, ...]) -> None:
    text = run_llmctl(*command, "--help").stdout
    for choice in (*Quantize, *DTypeChoice):
        assert choice.value in text
