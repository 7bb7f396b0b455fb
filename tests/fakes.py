"""A scripted fake provider, registered through the registry like a real adapter (llm's MockModel shape).

The ``fake_provider`` fixture hands each test a fresh :class:`FakeBackend` and routes ``openai/...``
models to it. A test queues what the next calls stream (``enqueue``), sets the capabilities a real
backend declares (context window, unsupported params, exact token counting) and the failures it can
have (in ``prepare``, mid-stream), then reads back what the provider was asked (``requests``) and how
it was used (``prepared``, ``closed``, ``stopped``). Services that take an opener get ``backend.open``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import pytest

from llmctl.domain import (
    CountSource,
    Finished,
    FinishReason,
    GenerationRequest,
    Message,
    StreamEvent,
    TextDelta,
    Usage,
    UsageUpdate,
)
from llmctl.errors import ProviderError
from llmctl.provider_specs import OpenAIProviderSettings
from llmctl.providers import registry
from llmctl.providers.base import PromptTokens, ResolvedModel

FAKE_ADAPTER = "tests.fakes:open_fake_provider"
ScriptItem = StreamEvent | BaseException
Script = Iterable[ScriptItem]


def fake_model(provider: str = "openai", model: str = "gpt-4o-mini") -> ResolvedModel:
    """A hosted model reference, as the registry resolves ``openai/gpt-4o-mini`` (priced by genai-prices)."""
    return ResolvedModel(provider, "openai", model, OpenAIProviderSettings())


@dataclass
class FakeBackend:
    """The scripted calls and the knobs of every FakeProvider a test opens."""

    window: int | None = None  # what context_window() answers
    unsupported_params: frozenset[str] = frozenset()  # GenerationParams fields it does not take
    # Exact prompt counts, as a local model has: the provider then reports them, up front in a UsageUpdate
    # and in its Finished (the prompt, and one output token per text delta).
    count_tokens: Callable[[Sequence[Message]], int] | None = None
    fail_prepare: BaseException | None = None  # raised by prepare(): a hosted provider without its key
    fail_after: int | None = None  # every stream raises ``failure`` after this many text deltas
    failure: BaseException = field(default_factory=lambda: ProviderError("The stream broke off."))
    scripts: deque[Script] = field(default_factory=deque)
    every_call: tuple[ScriptItem, ...] | None = None  # streamed when the queue is empty
    requests: list[GenerationRequest] = field(default_factory=list)
    opened: list[FakeProvider] = field(default_factory=list)
    prepared: int = 0
    closed: int = 0
    stopped: int = 0  # streams that ended, however: run out, failed, or closed by the consumer

    def enqueue(self, *items: ScriptItem | str) -> None:
        """Queue one call: strings become text deltas; a Finished is added unless one (or an exception) is given."""
        self.scripts.append(self._complete(items))

    def enqueue_words(self, text: str) -> None:
        """Queue one call that streams ``text`` a word (one token) at a time."""
        words = text.split()
        self.scripts.append(
            self._complete([TextDelta(w if i == 0 else f" {w}", tokens=1) for i, w in enumerate(words)])
        )

    def enqueue_endless(self, text: str = "word ") -> None:
        """Queue one call that streams ``text`` until the consumer stops it."""
        self.scripts.append(repeat(TextDelta(text, tokens=1)))

    def answer_every_call(self, *items: ScriptItem | str) -> None:
        """What each call streams once the queue is empty."""
        self.every_call = tuple(self._complete(items))

    @property
    def calls(self) -> int:
        return len(self.requests)

    def open(self, resolved: ResolvedModel | None = None) -> FakeProvider:
        """A provider on this backend, as ``registry.open_provider`` makes one (an opener for services)."""
        provider_class = CountingFakeProvider if self.count_tokens is not None else FakeProvider
        return provider_class(resolved or fake_model(), self)

    def next_script(self, request: GenerationRequest) -> Iterator[ScriptItem]:
        self.requests.append(request)
        if self.scripts:
            return iter(self.scripts.popleft())
        if self.every_call is None:
            raise AssertionError(f"FakeProvider was called {self.calls} times; only {self.calls - 1} were enqueued")
        return iter(self.every_call)

    def _complete(self, items: Iterable[ScriptItem | str]) -> list[ScriptItem]:
        script: list[ScriptItem] = [TextDelta(i) if isinstance(i, str) else i for i in items]
        if not any(isinstance(i, (Finished, BaseException)) for i in script):
            script.append(Finished(Usage(3, len(script), CountSource.PROVIDER), FinishReason.STOP))
        return script


class FakeProvider:
    """A provider that does what its backend says."""

    def __init__(self, resolved: ResolvedModel, backend: FakeBackend) -> None:
        self.resolved = resolved
        self.fake = backend
        self.requests: list[GenerationRequest] = []  # this provider's; the backend's list has every one's
        self.closed = False
        self.unsupported_params = backend.unsupported_params
        backend.opened.append(self)

    def prepare(self) -> None:
        self.fake.prepared += 1
        if self.fake.fail_prepare is not None:
            raise self.fake.fail_prepare

    def context_window(self) -> int | None:
        return self.fake.window

    def close(self) -> None:
        self.closed = True
        self.fake.closed += 1

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self.requests.append(request)
        script = self.fake.next_script(request)
        prompt = self.fake.count_tokens(request.messages) if self.fake.count_tokens is not None else None
        try:
            if prompt is not None:  # a counting provider knows the prompt's size before the first token
                yield UsageUpdate(Usage(input_tokens=prompt, source=CountSource.EXACT))
            deltas = 0
            for item in script:
                if isinstance(item, TextDelta) and self.fake.fail_after is not None and deltas >= self.fake.fail_after:
                    raise self.fake.failure
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Finished) and prompt is not None:
                    item = Finished(Usage(prompt, deltas, CountSource.EXACT), item.finish_reason)
                deltas += isinstance(item, TextDelta)
                yield item
        finally:
            self.fake.stopped += 1


class CountingFakeProvider(FakeProvider):
    """A FakeProvider that counts prompt tokens exactly, as a local model does with its tokenizer."""

    def count_prompt_tokens(self, messages: Sequence[Message]) -> PromptTokens:
        assert self.fake.count_tokens is not None
        return PromptTokens(self.fake.count_tokens(messages), CountSource.EXACT, "the fake's own count")


_current: list[FakeBackend] = []  # the fake_provider fixture's backend, while a test runs


def open_fake_provider(resolved: ResolvedModel) -> FakeProvider:
    """The adapter the registry imports (FAKE_ADAPTER): a provider on the running test's backend."""
    if not _current:
        raise AssertionError("a fake model was opened outside the fake_provider fixture")
    return _current[-1].open(resolved)


@pytest.fixture
def fake_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackend]:
    """A fresh FakeBackend; ``openai/...`` models open a FakeProvider on it through the registry."""
    backend = FakeBackend()
    monkeypatch.setitem(registry.ADAPTERS, "openai", FAKE_ADAPTER)
    _current.append(backend)
    yield backend
    _current.remove(backend)
