"""Run one request through a provider: compose the input, stream, time, and collect.

The CLI iterates ``GenerationRun.deltas()`` to show text as it arrives, then asks
for ``result()``. A run that fails or is interrupted still has a result: the
text already streamed and the usage known so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from llmctl.domain import (
    Completion,
    CompletionBuilder,
    CountSource,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    Message,
    RunStatus,
    StreamEvent,
    TextDelta,
)
from llmctl.errors import ContextLengthError, InputError, LlmctlError, UsageError

if TYPE_CHECKING:  # annotations only: importing them pulls in pydantic, which `llmctl --help` skips
    from llmctl.config import Defaults
    from llmctl.providers.base import Provider


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


# The most llmctl reads from stdin. Reading is bounded so that `cat huge.log | llmctl ...`
# is refused in a moment instead of filling memory; no context window holds this much text.
MAX_INPUT_BYTES = 64 * 2**20
# No token of a vocabulary llmctl has met covers more than this many characters of text
# (tiktoken's encodings and Llama 3's cap tokens at 128 bytes; SentencePiece vocabularies are
# shorter): so text longer than window * this cannot fit, and is refused without tokenizing it.
MAX_CHARS_PER_TOKEN = 128


def read_stdin(stream: BinaryIO, limit: int = MAX_INPUT_BYTES) -> str:
    """Piped input as text, reading at most ``limit`` bytes of it (more is an error)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            f"Standard input is larger than {limit // 2**20} MiB, the most llmctl reads.",
            hint="Pass a part of it (e.g. `head -c 1M FILE | llmctl ...`), or split it and summarize the parts.",
        )
    return decode_stdin(data)


def check_input_size(
    messages: Sequence[Message], context_window: int | None, *, model: str, hint: str | None = None
) -> None:
    """Refuse input that cannot fit in ``context_window`` from its length alone.

    Cheap (no tokenizer) and never wrong: a token covers at most ``MAX_CHARS_PER_TOKEN``
    characters, so this many characters are at least ``chars / MAX_CHARS_PER_TOKEN`` tokens.
    Input that passes is then counted exactly by the provider. Tokenizing 50 MB of text
    would take minutes and gigabytes; this takes microseconds.
    """
    if context_window is None:
        return
    chars = sum(len(message.content) for message in messages)
    at_least = -(-chars // MAX_CHARS_PER_TOKEN)
    if at_least > context_window:
        raise ContextLengthError(at_least, context_window, model=model, at_least=True, hint=hint)


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
    """What the user asked for: a flag, else a key they wrote in the config's ``[defaults]``.

    A key nobody set stays ``None``: a hosted API then samples with its own defaults (and
    answers at full length), and a local model falls back on llmctl's built-in ones
    (``LOCAL_DEFAULTS`` in the Hugging Face adapter).
    """
    written = defaults.model_fields_set
    return GenerationParams(
        temperature=temperature if temperature is not None or "temperature" not in written else defaults.temperature,
        top_p=top_p if top_p is not None or "top_p" not in written else defaults.top_p,
        max_tokens=max_tokens if max_tokens is not None or "max_tokens" not in written else defaults.max_tokens,
        seed=seed if seed is not None or "seed" not in written else defaults.seed,
    )


# Chat framing on top of the text: a few tokens per message (role, separators) and a few to prime the reply.
_FRAMING_TOKENS_PER_MESSAGE = 8
_FRAMING_TOKENS = 3


def check_hosted_context(provider: Provider, request: GenerationRequest) -> None:
    """Refuse, before the call, an input a hosted model's known window cannot hold.

    The window is the alias's ``context_window`` or the one listed for a known model.
    A local model is checked as it tokenizes (exactly, in its adapter). Here the count
    is exact (OpenAI's encodings) or the provider's (Anthropic's count-tokens API); an
    estimate refuses nothing, the server decides. Counting costs something, so it only
    runs when the input's size in bytes (a token is at least one byte) could overflow.
    """
    from llmctl.services import token_counting

    resolved = provider.resolved
    if resolved.spec.local:
        return
    window = provider.context_window() or token_counting.context_window(resolved)
    if window is None:
        return
    messages = request.messages
    most = sum(len(m.content.encode()) for m in messages) + _FRAMING_TOKENS_PER_MESSAGE * len(messages)
    if most + _FRAMING_TOKENS < window:
        return
    counted = token_counting.count_tokens(resolved, messages)
    if counted.source is not CountSource.ESTIMATE and counted.tokens >= window:
        raise ContextLengthError(counted.tokens, window, model=resolved.display_name)


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
        self._prepared = False
        self._live: Generator[str, None, None] | None = None

    def deltas(self) -> Generator[str, None, None]:
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
                except ValueError:
                    # Being read on another thread right now (compare leaves a call to a silent server
                    # behind on Ctrl-C): it cannot be closed from here, and ends with that thread.
                    return

    def _stream(self) -> Generator[str, None, None]:
        events: Iterator[StreamEvent] = iter(())
        try:
            # Inside the try: a model that fails to load is a failed run, not an ok one.
            if self._prepare:
                self._provider.prepare()
            self._prepared = True
            resolved = self._provider.resolved
            check_input_size(self._request.messages, self._provider.context_window(), model=resolved.display_name)
            check_hosted_context(self._provider, self._request)
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

    @property
    def prepared(self) -> bool:
        """Whether the provider got ready (a local model loaded) before the run ended."""
        return self._prepared

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
            model=resolved.short_name,
            provider=resolved.provider_name,
            timing=Timing(first_token_s=first, total_s=max(0.0, end - start)),
            status=self._status,
            error=self._error,
            reached_model=self._reached,
        )
