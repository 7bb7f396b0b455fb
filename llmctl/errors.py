"""Typed errors. Every message says what went wrong and how to fix it.

The CLI edge maps each class to an exit code (see ``cli/app.py``); nothing below
the CLI prints or exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """How llmctl exits. A signal ends it as a shell reports a signal death: 128 + the signal's number."""

    OK = 0
    FAILURE = 1
    USAGE = 2  # the command line, the config or the input is wrong
    HANGUP = 129  # SIGHUP
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM


class LlmctlError(Exception):
    """Base class: a failure the user can act on, shown as one line."""

    exit_code: ExitStatus = ExitStatus.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UsageError(LlmctlError):
    """The command line itself is wrong (missing prompt, bad flag value)."""

    exit_code = ExitStatus.USAGE


class ConfigError(LlmctlError):
    """The configuration file is missing a key, has a wrong type or bad syntax."""

    exit_code = ExitStatus.USAGE


class ModelNotFoundError(LlmctlError):
    """A model reference resolves to nothing we can load or call."""

    exit_code = ExitStatus.USAGE


class InputError(LlmctlError):
    """The input given to a model is unusable (bad encoding, too long)."""

    exit_code = ExitStatus.USAGE


class ContextLengthError(InputError):
    """The prompt does not fit in the model's context window."""

    def __init__(
        self,
        prompt_tokens: int,
        context_window: int,
        *,
        model: str,
        at_least: bool = False,
        hint: str | None = None,
    ) -> None:
        # at_least: the count is a lower bound from the input's length, not a tokenizer's count.
        # hint: what to change where the input came from (a flag, a chat command); -m MODEL by default.
        size = f"at least {prompt_tokens}" if at_least else str(prompt_tokens)
        super().__init__(
            f"The input is {size} tokens but {model} has a context window of {context_window} tokens.",
            hint=hint or "Shorten the input, or pick a model with a larger context window (-m MODEL).",
        )
        self.prompt_tokens = prompt_tokens
        self.context_window = context_window


class MissingDependencyError(LlmctlError):
    """An optional extra (local models, a vendor SDK) is not installed."""

    exit_code = ExitStatus.FAILURE


class ProviderError(LlmctlError):
    """A model backend failed: load error, API error, dropped stream.

    Raised from inside a provider's stream after any text already yielded, so the
    consumer keeps that text and the usage events it has seen.
    """

    exit_code = ExitStatus.FAILURE


class AuthenticationError(ProviderError):
    """An API key is missing or was rejected."""


class OutputError(LlmctlError):
    """Standard output refused the answer: closed, or its disk full."""

    @classmethod
    def closed(cls) -> OutputError:
        return cls(
            "Standard output is closed; the answer would have nowhere to go, so no call was made.",
            hint="Redirect it instead: > answer.txt, or > /dev/null to discard it.",
        )
