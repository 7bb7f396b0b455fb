"""Plain values shared by every layer, and the pure reducer that turns a stream into a result.

Nothing here imports a third-party library: these types cross every boundary
(providers yield them, services collect them, the CLI renders them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


class CountSource(StrEnum):
    """Where a token count came from. An unknown count is ``None`` with source UNKNOWN."""

    PROVIDER = "provider"  # the API reported it
    EXACT = "exact"  # counted with the model's own tokenizer
    ESTIMATE = "estimate"  # a heuristic, labelled as such
    UNKNOWN = "unknown"  # nobody knows; the count is None


class FinishReason(StrEnum):
    """Why a generation ended, normalised across providers."""

    STOP = "stop"  # end-of-sequence or a stop sequence
    LENGTH = "length"  # hit max_tokens
    INTERRUPTED = "interrupted"  # the user pressed Ctrl-C
    ERROR = "error"  # the provider failed mid-way
    OTHER = "other"


class RunStatus(StrEnum):
    """How a model call ended: the ledger's ``status`` column and a chat turn's ``status`` hold these values."""

    OK = "ok"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM or SIGHUP (the text so far is kept)


@dataclass(frozen=True)
class Image:
    """An image sent with a message (``-f photo.png``), for models that take images."""

    media_type: str  # image/png, image/jpeg, image/gif, image/webp
    data: bytes = field(repr=False)
    name: str = ""


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    images: tuple[Image, ...] = ()


# The ranges every backend takes, shared by the config's fields and the command-line flags.
# A seed goes to torch.manual_seed and to hosted APIs as a signed 64-bit integer.
SEED_MIN = -(2**63)
SEED_MAX = 2**63 - 1
# Token counts travel as 32-bit integers in the APIs and tokenizers llmctl talks to.
TOKENS_MAX = 2**31 - 1


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters; ``None`` means "the provider's or model's default"."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def or_defaults(self, defaults: GenerationParams) -> GenerationParams:
        """These params, with ``defaults``' value wherever this one is ``None``."""
        pairs = zip(astuple(self), astuple(defaults), strict=True)
        return GenerationParams(*(mine if mine is not None else fallback for mine, fallback in pairs))


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[Message, ...]
    params: GenerationParams = field(default_factory=GenerationParams)
    response_schema: Mapping[str, Any] | None = None  # the answer must be JSON valid for this schema
    stream: bool = True  # False: ask a hosted API for the whole answer in one response (--no-stream)


@dataclass(frozen=True)
class Usage:
    """Token counts of one call. ``None`` is unknown, never zero."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    source: CountSource = CountSource.UNKNOWN
    cached_input_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return self.input_tokens + self.output_tokens


UNKNOWN_USAGE = Usage()


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer. ``tokens`` is how many output tokens it carries, when known."""

    text: str
    tokens: int | None = None


@dataclass(frozen=True)
class UsageUpdate:
    """Usage known so far (for example input tokens before any output). Latest wins."""

    usage: Usage


@dataclass(frozen=True)
class Finished:
    """The last event of every successful stream."""

    usage: Usage
    finish_reason: FinishReason


StreamEvent = TextDelta | UsageUpdate | Finished


@dataclass(frozen=True)
class Completion:
    """What a call produced: the text, why it ended and what it cost in tokens."""

    text: str
    finish_reason: FinishReason
    usage: Usage


class CompletionBuilder:
    """Accumulates stream events; can produce a Completion even if the stream broke off.

    An interrupted or failed call keeps the text already streamed and the usage
    known so far; output tokens counted per delta make that usage exact for
    local models.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._usage: Usage = UNKNOWN_USAGE
        self._delta_tokens: int | None = 0
        self.finished: Finished | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._parts.append(event.text)
            if self._delta_tokens is not None:
                self._delta_tokens = None if event.tokens is None else self._delta_tokens + event.tokens
        elif isinstance(event, UsageUpdate):
            self._usage = event.usage
        else:
            self.finished = event

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def partial_usage(self) -> Usage:
        """Usage for a stream that did not finish: known input, output counted from deltas."""
        usage = self._usage
        if usage.output_tokens is None and self._delta_tokens is not None and self._parts:
            usage = replace(usage, output_tokens=self._delta_tokens)
        return usage

    def build(self, *, ended: FinishReason | None = None) -> Completion:
        """The Completion so far; ``ended`` names why it stopped when no Finished came."""
        if self.finished is not None:
            return Completion(self.text, self.finished.finish_reason, self.finished.usage)
        return Completion(self.text, ended or FinishReason.OTHER, self.partial_usage())


def collect(events: Iterable[StreamEvent]) -> Completion:
    """Reduce a whole stream to its Completion."""
    builder = CompletionBuilder()
    for event in events:
        builder.add(event)
    return builder.build()


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``1 token``, ``2 tokens``, ``1,024 entries`` (pass the plural when it is not noun + "s")."""
    return f"{count:,} {noun if count == 1 else plural_noun or noun + 's'}"


# Sizes and counts as people read them (used in messages and tables).
_DECIMAL_UNITS = ("B", "KB", "MB", "GB", "TB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(value: float | None, *, binary: bool = False) -> str:
    """``1.23 GB`` (decimal units, as disks and the Hub count), or with ``binary`` ``1.15 GiB``
    (powers of 1024, as memory is counted); None is "unknown"."""
    if value is None:
        return "unknown"
    step, units = (1024, _BINARY_UNITS) if binary else (1000, _DECIMAL_UNITS)
    size = float(value)
    for unit in units:
        if abs(size) < step or unit == units[-1]:
            break
        size /= step
    if unit == "B":
        return f"{size:,.0f} B"
    return f"{size:,.2f} {unit}" if size < 10 else f"{size:,.1f} {unit}"


def human_count(value: int | None) -> str:
    """``1.24B``, ``350.5M``, ``12.3K`` parameters; None is "unknown"."""
    if value is None:
        return "unknown"
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= threshold:
            return f"{value / threshold:.2f}{suffix}" if value < threshold * 10 else f"{value / threshold:.1f}{suffix}"
    return str(value)
