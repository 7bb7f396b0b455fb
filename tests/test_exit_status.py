"""One table of exit codes (ExitStatus): errors, signals and the CLI all take theirs from it."""

from __future__ import annotations

import signal

import pytest

from llmctl import errors
from llmctl.errors import ExitStatus
from llmctl.services import interrupts
from llmctl.services.structured import SchemaMismatch
from llmctl.services.usage.budget import BudgetExceededError


def test_the_codes_are_the_documented_ones() -> None:
    assert {status.name: int(status) for status in ExitStatus} == {
        "OK": 0,
        "FAILURE": 1,
        "USAGE": 2,
        "HANGUP": 129,
        "INTERRUPTED": 130,
        "TERMINATED": 143,
    }


@pytest.mark.parametrize(
    ("interrupt", "expected"),
    [
        (KeyboardInterrupt(), ExitStatus.INTERRUPTED),
        (interrupts.Terminated(signal.SIGTERM), ExitStatus.TERMINATED),
        (interrupts.Terminated(signal.SIGHUP), ExitStatus.HANGUP),
    ],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_signal_exits_as_a_shell_reports_it(interrupt: BaseException, expected: ExitStatus) -> None:
    code = interrupts.exit_code(interrupt)
    assert code is expected
    if isinstance(interrupt, interrupts.Terminated):
        assert code == 128 + interrupt.signum


def _error_classes() -> list[type[errors.LlmctlError]]:
    """LlmctlError and every subclass of it imported so far (errors.py's, the budget's, structured output's ...)."""
    found, pending = [], [errors.LlmctlError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    assert {BudgetExceededError, SchemaMismatch} <= set(found)
    return found


@pytest.mark.parametrize("error_class", _error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_exits_with_a_member_of_the_table(error_class: type[errors.LlmctlError]) -> None:
    assert isinstance(error_class.exit_code, ExitStatus)
    assert error_class.exit_code in (ExitStatus.FAILURE, ExitStatus.USAGE)


@pytest.mark.parametrize(
    ("error_class", "expected"),
    [
        (errors.LlmctlError, ExitStatus.FAILURE),
        (errors.UsageError, ExitStatus.USAGE),
        (errors.ConfigError, ExitStatus.USAGE),
        (errors.ModelNotFoundError, ExitStatus.USAGE),
        (errors.InputError, ExitStatus.USAGE),
        (errors.ContextLengthError, ExitStatus.USAGE),
        (BudgetExceededError, ExitStatus.USAGE),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_usage_and_config_errors_are_2_and_the_rest_1(
    error_class: type[errors.LlmctlError], expected: ExitStatus
) -> None:
    assert error_class.exit_code is expected
