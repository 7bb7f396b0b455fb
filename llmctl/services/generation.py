"""Run one request through a provider: compose the input, stream, time, and collect.

The CLI iterates ``GenerationRun.deltas()`` to show text as it arrives, then asks
for ``result()``. A run that fails or is interrupted still has a result: the
text already streamed and the usage known so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from llmctl.domain import (
    Completion,
    CompletionBuilder,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Message,
    StreamEvent,
    TextDelta,
)
from llmctl.errors import InputError, LlmctlError, UsageError

if TYPE_CHECKING:  # annotations only: importing them pulls in pydantic, which `llmctl --help` skips
    from llmctl.config import Defaults
    from llmctl.providers.base import Provider


class RunStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Timing:
    first_token_s: float | None
    total_s: float


@dataclass(frozen=True)
class GenerationResult:
    completion: Completion
    model: str
    provider: str
    timing: Timing
    status: RunStatus
    error: LlmctlError | None = None
    # False when the call never got to a model (not in the cache, no API key, prompt refused):
    # its token counts are not applicable rather than unknown.
    reached_model: bool = True


def decode_stdin(data: bytes) -> str:
    """Piped input as text; anything but UTF-8 is an error, not mojibake."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"Standard input is not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r}).",
            hint="Convert it first, e.g. `iconv -f latin1 -t utf-8 FILE | llmctl generate ...`.",
        ) from None


def compose_prompt(argument: str | None, piped: str | None) -> str:
    """The prompt from the argument and piped stdin.

    Both: the argument, a blank line, then stdin. Only one: that one alone.
    Neither (or only whitespace): a usage error.
    """
    argument = argument if argument and argument.strip() else None
    piped = piped if piped and piped.strip() else None
    if argument and piped:
        return f"{argument}\n\n{piped}"
    if argument or piped:
        return argument or piped or ""
    raise UsageError(
        "No prompt given.",
        hint='Pass it as an argument (llmctl generate "...") or pipe it in (cat file | llmctl generate).',
    )


def build_messages(prompt: str, system: str | None) -> tuple[Message, ...]:
    messages = [Message("system", system)] if system else []
    return (*messages, Message("user", prompt))


def resolve_params(
    defaults: Defaults,
    *,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
) -> GenerationParams:
    """Flags override the config's ``[defaults]``."""
    return GenerationParams(
        temperature=defaults.temperature if temperature is None else temperature,
        top_p=defaults.top_p if top_p is None else top_p,
        max_tokens=defaults.max_tokens if max_tokens is None else max_tokens,
        seed=defaults.seed if seed is None else seed,
    )


class GenerationRun:
    """One call: iterate ``deltas()``, then read ``result()`` whatever happened.

    Any exception ends the run as an error (not only LlmctlError: a malformed stream or a
    template that raises still leaves a failed run with the text so far); Ctrl-C and the
    consumer closing the stream end it as interrupted. ``events`` replaces
    ``provider.stream(request)`` for callers that feed the provider differently (bench's
    exact prompt ids); ``prepare=False`` for a caller that loaded the model itself (and timed it).
    """

    def __init__(
        self,
        provider: Provider,
        request: GenerationRequest,
        clock: Callable[[], float] = time.perf_counter,
        *,
        events: Callable[[], Iterator[StreamEvent]] | None = None,
        prepare: bool = True,
    ) -> None:
        self._provider = provider
        self._prepare = prepare
        self._request = request
        self._clock = clock
        self._events = events
        self._builder = CompletionBuilder()
        self._started: float | None = None
        self._first_token: float | None = None
        self._ended: float | None = None
        self._status = RunStatus.OK
        self._error: LlmctlError | None = None
        self._reached = False
        self._live: Generator[str, None, None] | None = None

    def deltas(self) -> Iterator[str]:
        """Text pieces as they arrive. Re-raises provider errors after recording them."""
        self._live = self._stream()
        return self._live

    @property
    def provider(self) -> Provider:
        return self._provider

    @property
    def status(self) -> RunStatus:
        return self._status

    def close(self) -> None:
        """Stop the stream if its consumer left it half-read (the provider stops generating)."""
        if self._live is not None:
            for _ in range(3):  # a second Ctrl-C while it winds down must not leave it open
                try:
                    self._live.close()
                    return
                except KeyboardInterrupt:
                    continue

    def _stream(self) -> Generator[str, None, None]:
        events: Iterator[StreamEvent] = iter(())
        try:
            # Inside the try: a model that fails to load is a failed run, not an ok one.
            if self._prepare:
                self._provider.prepare()
            self._started = self._clock()
            self._reached = True
            events = self._events() if self._events is not None else self._provider.stream(self._request)
            for event in events:
                self._builder.add(event)
                if isinstance(event, TextDelta) and event.text:
                    if self._first_token is None:
                        self._first_token = self._clock()
                    yield event.text
        except LlmctlError as exc:
            self._fail(exc)
            raise
        except (KeyboardInterrupt, GeneratorExit):
            if self._status is RunStatus.OK:  # the consumer may already have marked it failed
                self._status = RunStatus.INTERRUPTED
            raise
        except Exception as exc:
            self._fail(LlmctlError(f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            self._ended = self._clock()

    def _fail(self, error: LlmctlError) -> None:
        self._status, self._error = RunStatus.ERROR, error
        if isinstance(error, InputError) and not self._builder.text:
            # Refused before anything was sent (a prompt too long for the window): no model was reached.
            self._reached = False

    def interrupted(self) -> None:
        """Mark the run as stopped by the user (the consumer stopped reading)."""
        if self._builder.finished is None and self._status is RunStatus.OK:
            self._status = RunStatus.INTERRUPTED

    def failed(self, error: LlmctlError) -> None:
        """Mark the run as failed by its consumer (stdout full): the answer did not get through."""
        if self._status is not RunStatus.ERROR:
            self._status, self._error = RunStatus.ERROR, error

    def result(self) -> GenerationResult:
        ended = {
            RunStatus.OK: None,
            RunStatus.ERROR: FinishReason.ERROR,
            RunStatus.INTERRUPTED: FinishReason.INTERRUPTED,
        }[self._status]
        completion = self._builder.build(ended=ended)
        now = self._clock()
        start = self._started if self._started is not None else now
        end = self._ended if self._ended is not None else now
        first = None if self._first_token is None else self._first_token - start
        resolved = self._provider.resolved
        return GenerationResult(
            completion=completion,
            model=resolved.alias or resolved.model_id,
            provider=resolved.provider_name,
            timing=Timing(first_token_s=first, total_s=max(0.0, end - start)),
            status=self._status,
            error=self._error,
            reached_model=self._reached,
        )
