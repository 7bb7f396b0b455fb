"""A scripted fake provider for CLI tests, registered through the registry like a real adapter.

``FakeProvider.enqueue(...)`` queues the events of the next call (llm's MockModel
shape); an exception in the script is raised at that point of the stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from llmctl.domain import CountSource, Finished, FinishReason, GenerationRequest, StreamEvent, TextDelta, Usage
from llmctl.providers.base import ResolvedModel

FAKE_ADAPTER = "tests.fakes:FakeProvider"


class FakeProvider:
    scripts: ClassVar[list[list[StreamEvent | Exception]]] = []
    requests: ClassVar[list[GenerationRequest]] = []

    def __init__(self, resolved: ResolvedModel) -> None:
        self.resolved = resolved

    @classmethod
    def enqueue(cls, *items: StreamEvent | Exception | str) -> None:
        """Queue one call; plain strings become text deltas, and a Finished is added if none is given."""
        script: list[StreamEvent | Exception] = [TextDelta(i) if isinstance(i, str) else i for i in items]
        if not any(isinstance(i, (Finished, Exception)) for i in script):
            script.append(Finished(Usage(3, len(script), CountSource.PROVIDER), FinishReason.STOP))
        cls.scripts.append(script)

    @classmethod
    def reset(cls) -> None:
        cls.scripts.clear()
        cls.requests.clear()

    def prepare(self) -> None:
        pass

    def context_window(self) -> int | None:
        return None

    def close(self) -> None:
        pass

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        self.requests.append(request)
        for item in self.scripts.pop(0):
            if isinstance(item, Exception):
                raise item
            yield item
